"""The IPMI power-on: argv and environment (the password never in argv), address and
power-status parsing, the command sequence and its error paths.

Two doubles. A fake ``ipmitool`` placed first on PATH (a test double for the CLI wrapper
only) records what ``ps`` would show (/proc/self/cmdline) and the password it was given,
and answers from a scenario file. A real ``ipmitool -I lanplus`` against pyghmi's BMC
server on loopback (the library virtualbmc is built on) checks that the argv we build is
one the real tool accepts over a real RMCP+ session; the VM test drives the same
tool against virtualbmc and a libvirt domain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.certify.cli import build_parser, certify
from harness.certify.errors import CertifyError
from harness.certify.ipmi import (
    PASSWORD_VAR,
    IpmiTarget,
    find_ipmitool,
    parse_address,
    parse_power_status,
    power_on,
)
from harness.lab.sockets import udp_bound
from harness.pytest_plugin import require
from harness.wait import wait_until

pytestmark = pytest.mark.unit

SECRET = "s3cret-Pa55"

FAKE_IPMITOOL = textwrap.dedent("""\
    #!{python}
    # fake ipmitool: records what ps would show, answers from the scenario file
    import json, os, sys, time
    scenario = json.load(open(os.environ["FAKE_IPMI_SCENARIO"]))
    with open(scenario["log"], "a") as log:
        cmdline = open("/proc/self/cmdline", "rb").read().split(b"\\0")[:-1]
        log.write(json.dumps({{"cmdline": [a.decode() for a in cmdline],
                              "password": os.environ.get("IPMI_PASSWORD"),
                              "other_password": os.environ.get("IPMITOOL_PASSWORD")}}) + "\\n")
    args = sys.argv[1:]
    command = " ".join(args[args.index("-R") + 2:])
    answer = scenario["answers"].get(command, [0, "", ""])
    if len(answer) > 3:
        time.sleep(answer[3])
    sys.stdout.write(answer[1])
    sys.stderr.write(answer[2])
    sys.exit(answer[0])
    """)


class FakeTool:
    """The fake ipmitool's directory, its scenario and what it recorded."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.scenario = directory / "scenario.json"
        self.log = directory / "calls.jsonl"
        self.path = directory / "ipmitool"
        self.path.write_text(FAKE_IPMITOOL.format(python=sys.executable))
        self.path.chmod(0o755)
        self.answer({})

    def answer(self, answers: dict[str, list[Any]]) -> None:
        """Set the answers: command → [exit, stdout, stderr(, seconds to sleep first)]."""
        self.scenario.write_text(json.dumps({"log": str(self.log), "answers": answers}))

    def calls(self) -> list[dict[str, Any]]:
        """Every run so far: cmdline (as ps shows it) and the passwords in its env."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        """The ipmitool commands run, in order ("chassis power status" ...)."""
        out = []
        for call in self.calls():
            argv = call["cmdline"][2:]  # interpreter, script
            out.append(" ".join(argv[argv.index("-R") + 2:]))
        return out


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTool:
    tool = FakeTool(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_IPMI_SCENARIO", str(tool.scenario))
    monkeypatch.setenv("IPMITOOL_PASSWORD", "inherited-wrong-one")
    return tool


def _target(**kw: Any) -> IpmiTarget:
    base: dict[str, Any] = {"host": "10.0.0.9", "user": "admin", "password": SECRET,
                            "port": 6230, "timeout": 10.0}
    base.update(kw)
    return IpmiTarget(**base)


# what the real ipmitool 1.8.19 prints on success
SAID = {"chassis bootdev pxe": [0, "Set Boot Device to pxe\n", ""],
        "chassis power on": [0, "Chassis Power Control: Up/On\n", ""],
        "chassis power reset": [0, "Chassis Power Control: Reset\n", ""],
        "chassis power cycle": [0, "Chassis Power Control: Cycle\n", ""]}
OFF = {**SAID, "chassis power status": [0, "Chassis Power is off\n", ""]}
ON = {**SAID, "chassis power status": [0, "Chassis Power is on\n", ""]}


# -- argv, environment, parsing ---------------------------------------------------------

def test_argv_is_lanplus_with_E_and_never_holds_the_password() -> None:
    target = _target()
    argv = target.argv("chassis", "power", "status")
    assert argv == ["ipmitool", "-I", "lanplus", "-H", "10.0.0.9", "-p", "6230", "-U", "admin",
                    "-E", "-N", "2", "-R", "3", "chassis", "power", "status"]
    assert not any(SECRET in a for a in argv)
    assert SECRET not in repr(target)


def test_env_carries_the_password_and_drops_an_inherited_ipmitool_password() -> None:
    env = _target().env({"PATH": "/usr/bin", "IPMITOOL_PASSWORD": "other"})
    assert env == {"PATH": "/usr/bin", PASSWORD_VAR: SECRET}


@pytest.mark.parametrize(("text", "want"), [
    ("10.0.0.9", ("10.0.0.9", 623)),
    ("10.0.0.9:6230", ("10.0.0.9", 6230)),
    ("bmc.example", ("bmc.example", 623)),
    ("[fd00::9]:624", ("fd00::9", 624)),
    ("[fd00::9]", ("fd00::9", 623)),
    ("fd00::9", ("fd00::9", 623)),
])
def test_parse_address(text: str, want: tuple[str, int]) -> None:
    assert parse_address(text) == want


@pytest.mark.parametrize("text", ["", ":623", "10.0.0.9:", "10.0.0.9:x", "10.0.0.9:70000",
                                  "[fd00::9", "[fd00::9]x", "a b"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(CertifyError, match="--ipmi"):
        parse_address(text)


def test_ipv6_address_is_shown_in_brackets() -> None:
    assert _target(host="fd00::9", port=623).address == "[fd00::9]:623"


@pytest.mark.parametrize(("text", "want"), [
    ("Chassis Power is on\n", "on"), ("Chassis Power is off\n", "off"),
    ("Set Session Privilege Level to ADMINISTRATOR\nChassis Power is ON\n", "on"),
])
def test_parse_power_status(text: str, want: str) -> None:
    assert parse_power_status(text) == want


@pytest.mark.parametrize("text", ["", "Chassis Power Control: Up/On", "Chassis Power is unknown"])
def test_parse_power_status_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(CertifyError, match="cannot read the power state"):
        parse_power_status(text)


# -- the sequence, through the fake ipmitool ---------------------------------------------

def _password_never_visible(fake: FakeTool) -> None:
    calls = fake.calls()
    assert calls
    for call in calls:
        assert not any(SECRET in arg for arg in call["cmdline"]), call["cmdline"]
        assert call["password"] == SECRET
        assert call["other_password"] is None


def test_a_machine_that_is_off_gets_pxe_once_then_power_on(fake: FakeTool) -> None:
    fake.answer(OFF)
    done = power_on(_target(tool=find_ipmitool()))
    assert fake.commands() == ["chassis power status", "chassis bootdev pxe",
                               "chassis power on"]
    assert (done.power_state, done.command, done.warnings) == ("off", "chassis power on", [])
    assert done.boot_override == "pxe (next boot only)"
    assert done.to_json() == {"bmc": "10.0.0.9:6230", "interface": "lanplus",
                              "power_state_before": "off", "command": "chassis power on",
                              "boot_override": "pxe (next boot only)", "warnings": []}
    _password_never_visible(fake)


def test_a_machine_that_is_on_is_reset(fake: FakeTool) -> None:
    fake.answer(ON)
    done = power_on(_target(tool=find_ipmitool()))
    assert fake.commands()[-1] == "chassis power reset"
    assert (done.power_state, done.command) == ("on", "chassis power reset")


def test_a_refused_reset_falls_back_to_power_cycle_with_a_warning(fake: FakeTool) -> None:
    fake.answer({**ON, "chassis power reset": [1, "", "Invalid command\n"]})
    done = power_on(_target(tool=find_ipmitool()))
    assert fake.commands()[-2:] == ["chassis power reset", "chassis power cycle"]
    assert done.command == "chassis power cycle"
    assert done.warnings == ["chassis power reset refused (Invalid command); sent power "
                             "cycle instead"]


def test_a_refused_pxe_override_is_a_warning_and_the_machine_still_powers_on(
        fake: FakeTool) -> None:
    fake.answer({**OFF, "chassis bootdev pxe": [1, "", "Set Chassis Boot Parameter 5 failed\n"]})
    done = power_on(_target(tool=find_ipmitool()))
    assert fake.commands()[-1] == "chassis power on"
    assert done.boot_override is None
    assert len(done.warnings) == 1
    assert "Set Chassis Boot Parameter 5 failed" in done.warnings[0]
    assert "boot order decides" in done.warnings[0]


def test_a_refused_pxe_override_is_seen_even_when_ipmitool_exits_0(fake: FakeTool) -> None:
    # ipmitool 1.8.19 does exactly this for a BMC that refuses boot parameter 5
    fake.answer({**OFF, "chassis bootdev pxe": [
        0, "", "Set Chassis Boot Parameter 5 failed: Invalid command\n"]})
    done = power_on(_target(tool=find_ipmitool()))
    assert done.boot_override is None
    assert "Set Chassis Boot Parameter 5 failed: Invalid command" in done.warnings[0]


def test_a_power_on_ipmitool_does_not_confirm_is_an_error(fake: FakeTool) -> None:
    fake.answer({**OFF, "chassis power on": [0, "", ""]})
    with pytest.raises(CertifyError, match=r"chassis power on .*failed \(exit 0\)"):
        power_on(_target(tool=find_ipmitool()))


def test_no_pxe_override_when_not_asked(fake: FakeTool) -> None:
    fake.answer(OFF)
    done = power_on(_target(tool=find_ipmitool()), pxe_once=False)
    assert fake.commands() == ["chassis power status", "chassis power on"]
    assert done.boot_override is None


def test_a_session_failure_is_an_error_with_ipmitools_words_and_what_to_check(
        fake: FakeTool) -> None:
    said = "Error: Unable to establish IPMI v2 / RMCP+ session"
    fake.answer({"chassis bootdev pxe": [1, "", said + "\n"],
                 "chassis power status": [1, "", said + "\n"]})
    with pytest.raises(CertifyError) as info:
        power_on(_target(tool=find_ipmitool()))
    message = str(info.value)
    assert said in message and "10.0.0.9:6230" in message
    assert "--bmc-user" in message and "lanplus" in message and "address" in message
    assert fake.commands() == ["chassis power status"]  # no bootdev warning, no retries


def test_a_failed_power_on_is_an_error(fake: FakeTool) -> None:
    fake.answer({**OFF, "chassis power on": [1, "", "Insufficient privilege level\n"]})
    with pytest.raises(CertifyError, match=r"chassis power on .*Insufficient privilege level"):
        power_on(_target(tool=find_ipmitool()))


def test_the_password_is_redacted_from_ipmitools_message(fake: FakeTool) -> None:
    fake.answer({"chassis power status": [1, "", f"bad password {SECRET}\n"]})
    with pytest.raises(CertifyError) as info:
        power_on(_target(tool=find_ipmitool()), pxe_once=False)
    assert SECRET not in str(info.value) and "bad password ***" in str(info.value)


def test_a_bmc_that_does_not_answer_times_out(fake: FakeTool) -> None:
    fake.answer({"chassis power status": [0, "", "", 30]})
    with pytest.raises(CertifyError, match=r"did not finish within 1 s"):
        power_on(_target(tool=find_ipmitool(), timeout=1.0), pxe_once=False)


def test_missing_ipmitool_says_how_to_install_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CertifyError, match="apt-get install ipmitool"):
        find_ipmitool()
    with pytest.raises(CertifyError, match="apt-get install ipmitool"):
        power_on(_target(tool=str(tmp_path / "ipmitool")))


# -- the CLI: flags and early refusals ------------------------------------------------

BASE = ["--iface", "lo", "--mac", "52:54:00:00:00:01"]


def test_redfish_and_ipmi_are_mutually_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*BASE, "--redfish", "https://bmc", "--ipmi", "bmc"])
    assert info.value.code == 2
    assert "--ipmi: not allowed with argument --redfish" in capsys.readouterr().err


def _args(tmp_path: Path, *extra: str) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = tmp_path / "key.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    # a missing --kernel makes the run fail right after the BMC checks, before anything starts
    return build_parser().parse_args([*BASE, "--out", str(tmp_path / "out"), "--key", str(key),
                                      "--kernel", str(tmp_path / "none"),
                                      "--initrd", str(tmp_path / "none"), *extra])


def test_ipmi_needs_a_user_and_a_password_before_anything_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEXLAB_BMC_PASSWORD", raising=False)
    with pytest.raises(CertifyError, match="--ipmi needs --bmc-user and a password"):
        certify(_args(tmp_path, "--ipmi", "127.0.0.1", "--bmc-user", "admin"), out=lambda s: None)


def test_ipmi_address_is_checked_before_anything_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEXLAB_BMC_PASSWORD", SECRET)
    with pytest.raises(CertifyError, match=re.escape("--ipmi '127.0.0.1:x'")):
        certify(_args(tmp_path, "--ipmi", "127.0.0.1:x", "--bmc-user", "admin"),
                out=lambda s: None)
    # a good address gets past the BMC checks to the next one (the kernel)
    require(shutil.which("ipmitool"),
            "needs ipmitool on PATH: apt-get install ipmitool (scripts/setup-host.sh)")
    with pytest.raises(CertifyError, match="no such file"):
        certify(_args(tmp_path, "--ipmi", "127.0.0.1:6230", "--bmc-user", "admin"),
                out=lambda s: None)


# -- the real ipmitool against a real RMCP+ BMC (pyghmi) on loopback ----------------------

BMC_DOUBLE = textwrap.dedent("""\
    import sys
    import pyghmi.ipmi.bmc as bmc

    port, password, state, refuse = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]

    class Machine(bmc.Bmc):
        def get_power_state(self):
            return state

        def power_on(self):
            global state
            print("power on", flush=True)
            state = "on"

        def power_reset(self):
            if "reset" in refuse:
                raise NotImplementedError
            print("power reset", flush=True)

        def power_cycle(self):
            print("power cycle", flush=True)

        def get_boot_device(self):
            return "default"

        def set_boot_device(self, device):
            print("bootdev", device, flush=True)

        def set_system_boot_options(self, request, session):
            if "bootdev" in refuse and request["data"][0] == 5:
                session.send_ipmi_response(code=0xC1)  # invalid command, as old BMCs do
            else:
                super().set_system_boot_options(request, session)

    Machine({"admin": password}, port=port, address="127.0.0.1").listen()
    """)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RealBmc:
    """pyghmi's BMC server in a child process on loopback; ``said()`` is what it did."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc, self.port, self.log = proc, port, log

    def said(self) -> list[str]:
        """The BMC's actions so far ("bootdev network", "power on" ...)."""
        return self.log.read_text().splitlines()

    def target(self, password: str = SECRET) -> IpmiTarget:
        """An IpmiTarget for this BMC, timeouts small: loopback answers at once."""
        return IpmiTarget(host="127.0.0.1", port=self.port, user="admin", password=password,
                          timeout=20.0, session_timeout=1, retries=1, tool=find_ipmitool())


needs_ipmitool = pytest.mark.needs_binary(
    "ipmitool", how="apt-get install ipmitool (scripts/setup-host.sh)")
needs_pyghmi = pytest.mark.needs_module("pyghmi.ipmi.bmc", how="pip install -e .[test]")


@pytest.fixture
def real_bmc(tmp_path: Path) -> Iterator[Any]:
    """``real_bmc(state, *refuse)``: a pyghmi BMC double on loopback (tests using it carry
    ``needs_ipmitool`` and ``needs_pyghmi``)."""
    script = tmp_path / "bmc_double.py"
    script.write_text(BMC_DOUBLE)
    started: list[subprocess.Popen[bytes]] = []

    def start(state: str, *refuse: str) -> RealBmc:
        port = _free_udp_port()
        log = tmp_path / f"bmc-{port}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([sys.executable, str(script), str(port), SECRET, state,
                                     *refuse], stdout=out, stderr=subprocess.STDOUT)
        started.append(proc)
        wait_until(lambda: udp_bound(proc.pid, port) or proc.poll() is not None, timeout=20,
                   what="the IPMI BMC double to bind its port",
                   evidence=lambda: log.read_text(errors="replace"))
        assert proc.poll() is None, log.read_text(errors="replace")
        return RealBmc(proc, port, log)

    try:
        yield start
    finally:
        for proc in started:
            proc.kill()
            proc.wait(timeout=10)


@needs_ipmitool
@needs_pyghmi
def test_real_ipmitool_powers_on_a_machine_that_is_off(real_bmc: Any) -> None:
    bmc = real_bmc("off")
    done = power_on(bmc.target())
    assert (done.power_state, done.command, done.warnings) == ("off", "chassis power on", [])
    assert bmc.said() == ["bootdev network", "power on"]


@needs_ipmitool
@needs_pyghmi
def test_real_ipmitool_resets_one_that_is_on_and_falls_back_to_cycle(real_bmc: Any) -> None:
    bmc = real_bmc("on", "reset", "bootdev")
    done = power_on(bmc.target())
    assert done.command == "chassis power cycle"
    assert bmc.said() == ["power cycle"]
    assert done.boot_override is None
    assert len(done.warnings) == 2 and "boot order decides" in done.warnings[0]


@needs_ipmitool
@needs_pyghmi
def test_real_ipmitool_with_a_wrong_password_is_a_clear_error(real_bmc: Any) -> None:
    bmc = real_bmc("off")
    with pytest.raises(CertifyError) as info:
        power_on(bmc.target(password="wrong"))
    message = str(info.value)
    assert "RMCP+ session" in message and "--bmc-user" in message and "lanplus" in message
    assert bmc.said() == []
