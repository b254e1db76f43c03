"""What this host's kernel and packages let a lab do, found by trying, not by assuming.

A scenario may ask for a WireGuard tunnel, a TUN device for userspace WireGuard,
emulated latency (the netem qdisc) or an nftables firewall. Each is detected by doing
the smallest real thing in a throwaway network namespace (``unshare --net``: it dies
with the probe process, so nothing is left to clean and no lab is touched):

- ``nft``: load a table (the nft binary *and* the kernel's nf_tables)
- ``tun``: create a TUN device (``/dev/net/tun`` existing is not enough in a container)
- ``wireguard-kernel``: ``ip link add … type wireguard`` (the module may be missing:
  this machine's kernel has none, measured 2026-12)
- ``wireguard-go`` / ``wireguard-tools``: the Debian binaries on PATH
- ``netem``: ``tc qdisc add … netem`` (latency; this machine's kernel lacks sch_netem)

Each missing piece carries a how-to; :func:`require` raises :class:`CapabilityError`
with it, so a request the host cannot meet fails at once with the fix, never hangs or
silently does nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.errors import DependencyError

NFT = "nft"
TUN = "tun"
WIREGUARD_KERNEL = "wireguard-kernel"
WIREGUARD_GO = "wireguard-go"
WIREGUARD_TOOLS = "wireguard-tools"
NETEM = "netem"
ALL = (NFT, TUN, WIREGUARD_KERNEL, WIREGUARD_GO, WIREGUARD_TOOLS, NETEM)

HOW_TO = {
    NFT: "apt-get install nftables (and a kernel with nf_tables, CONFIG_NF_TABLES)",
    TUN: "load the tun module (modprobe tun) or, in a container, pass the device: "
         "--device /dev/net/tun --cap-add NET_ADMIN",
    WIREGUARD_KERNEL: "optional: modprobe wireguard (Linux >= 5.6, CONFIG_WIREGUARD); "
                      "without it the userspace wireguard-go is used",
    WIREGUARD_GO: "apt-get install wireguard-go (userspace WireGuard; needs tun)",
    WIREGUARD_TOOLS: "apt-get install wireguard-tools (the wg command)",
    NETEM: "latency needs the netem qdisc: modprobe sch_netem (a module in Debian's "
           "linux-image-amd64; a custom kernel needs CONFIG_NET_SCH_NETEM); "
           "loss alone works without it",
}

# A probe is an argv run in a fresh network namespace; it returns (ok, detail).
Runner = Callable[[Sequence[str]], tuple[bool, str]]
Which = Callable[[str], str | None]


class CapabilityError(DependencyError):
    """The host cannot do what was asked; the message names what is missing and how to
    get it (it is a DependencyError: a host requirement, not a bug in the request)."""


@dataclass(frozen=True)
class Capability:
    """One thing the host can or cannot do, with the evidence and the fix."""

    name: str
    available: bool
    detail: str
    how_to: str

    def line(self) -> str:
        """One line for a table: ``netem  missing  <detail>; how: <how_to>``."""
        state = "yes" if self.available else "missing"
        text = f"{self.name:<16} {state:<8} {self.detail}"
        return text if self.available else f"{text}; how: {self.how_to}"


def run_in_scratch_netns(argv: Sequence[str]) -> tuple[bool, str]:
    """Run ``argv`` in a new, unnamed network namespace that vanishes with the process."""
    if os.geteuid() != 0:
        return False, "not root: cannot make a scratch network namespace to try it"
    try:
        res = subprocess.run(["unshare", "--net", "--", *argv], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{argv[0]}: {exc}"
    out = (res.stderr or res.stdout).strip().splitlines()
    return res.returncode == 0, (out[-1] if out else f"exit {res.returncode}")


def _tried(name: str, ok: bool, detail: str, what: str) -> Capability:
    return Capability(name, ok, what if ok else detail or "failed", HOW_TO[name])


def detect(run: Runner = run_in_scratch_netns,
           which: Which = shutil.which) -> dict[str, Capability]:
    """Every capability of :data:`ALL`, each tried for real (``run`` and ``which`` are
    injectable so the decision logic is unit-tested without root)."""
    caps: dict[str, Capability] = {}
    if which("nft") is None:
        caps[NFT] = Capability(NFT, False, "nft not on PATH", HOW_TO[NFT])
    else:
        ok, detail = run(["nft", "add", "table", "inet", "flexlab_probe"])
        caps[NFT] = _tried(NFT, ok, detail, "nf_tables table loaded")
    ok, detail = run(["ip", "tuntap", "add", "dev", "flprobe0", "mode", "tun"])
    caps[TUN] = _tried(TUN, ok, detail, "TUN device created")
    ok, detail = run(["ip", "link", "add", "flprobe0", "type", "wireguard"])
    caps[WIREGUARD_KERNEL] = _tried(WIREGUARD_KERNEL, ok, detail, "kernel WireGuard link created")
    go = which("wireguard-go")
    caps[WIREGUARD_GO] = Capability(
        WIREGUARD_GO, go is not None and caps[TUN].available,
        (f"{go}" if caps[TUN].available else f"{go}, but no TUN device") if go
        else "wireguard-go not on PATH",
        HOW_TO[WIREGUARD_GO] if go is None else HOW_TO[TUN])
    wg = which("wg")
    caps[WIREGUARD_TOOLS] = Capability(WIREGUARD_TOOLS, wg is not None,
                                       wg or "wg not on PATH", HOW_TO[WIREGUARD_TOOLS])
    if which("tc") is None:
        caps[NETEM] = Capability(NETEM, False, "tc not on PATH (apt-get install iproute2)",
                                 HOW_TO[NETEM])
    else:
        ok, detail = run(["tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
        caps[NETEM] = _tried(NETEM, ok, detail, "netem qdisc added")
    return caps


def require(name: str, caps: dict[str, Capability]) -> Capability:
    """The capability ``name``, or :class:`CapabilityError` saying what is missing and how
    to get it."""
    cap = caps[name]
    if not cap.available:
        raise CapabilityError(f"this host has no {name} ({cap.detail}): {cap.how_to}")
    return cap


def wireguard_backend(caps: dict[str, Capability]) -> str:
    """``"kernel"`` where the module works, else ``"userspace"`` (wireguard-go on TUN);
    CapabilityError naming both fixes when neither works or ``wg`` is missing."""
    require(WIREGUARD_TOOLS, caps)
    if caps[WIREGUARD_KERNEL].available:
        return "kernel"
    if caps[WIREGUARD_GO].available:
        return "userspace"
    kernel, go = caps[WIREGUARD_KERNEL], caps[WIREGUARD_GO]
    raise CapabilityError(
        f"no WireGuard on this host: kernel module ({kernel.detail}) and userspace "
        f"({go.detail}) both missing: {go.how_to}; or {kernel.how_to}")


def report(caps: dict[str, Capability]) -> str:
    """The capability table, one line each (``python -m harness.lab.capabilities``)."""
    return "\n".join(caps[name].line() for name in ALL if name in caps)


def main() -> int:
    """Print what this host can do; exit 0 (missing pieces are facts, not failures)."""
    print(report(detect()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
