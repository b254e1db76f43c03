"""Power a machine on through its BMC over IPMI 2.0 (``ipmitool -I lanplus``), for BMCs
without Redfish.

The real ``ipmitool`` does the talking: it is what operators already trust and debug
with, and it speaks RMCP+ (authentication, integrity, cipher suites) that would be
unwise to reimplement. One subprocess per command, each with a timeout. The password
never reaches argv (``ps`` shows every argv to every user): ipmitool's ``-E`` reads it
from ``IPMI_PASSWORD`` in the child's environment only.

The sequence mirrors the Redfish one: ``chassis power status`` first (it proves the
address and the credentials: an unreachable BMC costs ipmitool's retries once, and is an
error, not a warning about the boot device), then a one-time PXE boot (``chassis bootdev
pxe``; best effort, a refusal is a warning and the machine's own boot order decides), then
``chassis power on`` for a machine that is off or ``chassis power reset`` for one already
on (``cycle`` if the BMC refuses the reset), so it PXE-boots now either way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.certify.errors import CertifyError

DEFAULT_PORT = 623
PASSWORD_VAR = "IPMI_PASSWORD"
# ipmitool -E prefers this one over IPMI_PASSWORD: drop it so an inherited value cannot win
_OTHER_PASSWORD_VAR = "IPMITOOL_PASSWORD"
_POWER_RE = re.compile(r"Chassis Power is (on|off)\b", re.IGNORECASE)
_HINT = ("check the BMC address and port, --bmc-user and the password, and that IPMI over "
         "LAN (IPMI 2.0 / lanplus) is enabled on the BMC")


def parse_address(text: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT`` → (host, port); port 623 by default."""
    value = text.strip()
    host, port_text = value, None
    if value.startswith("["):
        end = value.find("]")
        if end < 0 or (value[end + 1:] and not value[end + 1:].startswith(":")):
            raise CertifyError(f"--ipmi {text!r}: want HOST[:PORT] or [IPv6][:PORT]")
        host, port_text = value[1:end], (value[end + 2:] if value[end + 1:] else None)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    # more than one colon without brackets: a bare IPv6 address, no port
    if not host or any(c.isspace() for c in host):
        raise CertifyError(f"--ipmi {text!r}: want HOST[:PORT], e.g. 10.0.0.9 or 10.0.0.9:623")
    if port_text is None:
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise CertifyError(f"--ipmi {text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def find_ipmitool() -> str:
    """Path of ``ipmitool``, or a CertifyError saying how to install it."""
    path = shutil.which("ipmitool")
    if path is None:
        raise CertifyError("--ipmi needs ipmitool on PATH: apt-get install ipmitool")
    return path


@dataclass(frozen=True)
class IpmiTarget:
    """One BMC and how to reach it; renders ipmitool's argv and environment.

    ``timeout`` bounds each ipmitool run as a whole; ``session_timeout`` and ``retries``
    are ipmitool's own per-packet ones (``-N``, ``-R``), kept small so an unreachable BMC
    fails in seconds rather than minutes.
    """

    host: str
    user: str
    password: str = field(repr=False)
    port: int = DEFAULT_PORT
    timeout: float = 30.0
    session_timeout: int = 2
    retries: int = 3
    tool: str = "ipmitool"

    @property
    def address(self) -> str:
        """``host:port`` as it is shown and recorded (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def argv(self, *command: str) -> list[str]:
        """ipmitool's argv for ``command``: no password in it (``-E`` reads the env)."""
        return [self.tool, "-I", "lanplus", "-H", self.host, "-p", str(self.port),
                "-U", self.user, "-E", "-N", str(self.session_timeout),
                "-R", str(self.retries), *command]

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The child's environment: ``base`` (default ours) plus the password for ``-E``."""
        env = dict(os.environ if base is None else base)
        env.pop(_OTHER_PASSWORD_VAR, None)
        env[PASSWORD_VAR] = self.password
        return env


class IpmiCommandError(CertifyError):
    """One ipmitool command failed; ``said`` is ipmitool's own message (password redacted)."""

    def __init__(self, message: str, said: str) -> None:
        super().__init__(message)
        self.said = said


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def run(target: IpmiTarget, *command: str, expect: str | None = None) -> str:
    """Run one ipmitool command against ``target`` and return its stdout.

    Raises IpmiCommandError (a CertifyError) with ipmitool's own message and what to
    check when it exits non-zero, or when its stdout does not match ``expect``: ipmitool
    1.8.19 prints ``Set Chassis Boot Parameter 5 failed`` for a refused ``bootdev`` and
    still exits 0, so success is read from what it says it did. CertifyError when it
    cannot run or times out.
    """
    what = " ".join(command)
    try:
        done = subprocess.run(target.argv(*command), env=target.env(), capture_output=True,
                              text=True, timeout=target.timeout, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise CertifyError(f"cannot run {target.tool!r}: apt-get install ipmitool") from exc
    except subprocess.TimeoutExpired as exc:
        raise CertifyError(f"ipmitool {what} on the BMC at {target.address} did not finish "
                           f"within {target.timeout:.0f} s: {_HINT}") from exc
    if done.returncode != 0 or (expect and not re.search(expect, done.stdout)):
        said = _redact(done.stderr.strip() or done.stdout.strip(), target.password)[-400:]
        raise IpmiCommandError(f"ipmitool {what} on the BMC at {target.address} failed "
                               f"(exit {done.returncode}): {said or 'no message'}; {_HINT}",
                               said or f"exit {done.returncode}")
    return done.stdout


def parse_power_status(text: str) -> str:
    """``on`` or ``off`` from ``chassis power status`` output; CertifyError otherwise."""
    match = _POWER_RE.search(text)
    if match is None:
        raise CertifyError(f"cannot read the power state from ipmitool's answer "
                           f"{text.strip()[:200]!r}: expected 'Chassis Power is on|off'")
    return match.group(1).lower()


@dataclass
class IpmiPowerOn:
    """What was done: the BMC, the power state before, the command sent, any warning."""

    bmc: str
    power_state: str
    command: str
    boot_override: str | None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record in certification.json ``settings.ipmi`` (no credentials)."""
        return {"bmc": self.bmc, "interface": "lanplus", "power_state_before": self.power_state,
                "command": self.command, "boot_override": self.boot_override,
                "warnings": list(self.warnings)}


def power_on(target: IpmiTarget, *, pxe_once: bool = True) -> IpmiPowerOn:
    """Read the power state, set a one-time PXE boot (best effort), then power the machine
    on or reset it."""
    state = parse_power_status(run(target, "chassis", "power", "status"))
    warnings: list[str] = []
    override: str | None = None
    if pxe_once:
        try:
            run(target, "chassis", "bootdev", "pxe", expect=r"Set Boot Device to pxe")
            override = "pxe (next boot only)"
        except IpmiCommandError as exc:
            warnings.append(f"one-time PXE boot (chassis bootdev pxe) refused ({exc.said}): "
                            "the machine's boot order decides")
    if state == "off":
        command = "chassis power on"
        run(target, "chassis", "power", "on", expect=r"Chassis Power Control: Up/On")
    else:
        command = "chassis power reset"
        try:
            run(target, "chassis", "power", "reset", expect=r"Chassis Power Control: Reset")
        except IpmiCommandError as exc:
            warnings.append(f"chassis power reset refused ({exc.said}); sent power cycle "
                            "instead")
            command = "chassis power cycle"
            run(target, "chassis", "power", "cycle", expect=r"Chassis Power Control: Cycle")
    return IpmiPowerOn(target.address, state, command, override, warnings)
