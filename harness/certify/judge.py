"""The KubeFlex machine requirements, judged one by one from what the node agent registered.

The thresholds are the Control Plane's (controlplane/requirements.py), so a machine that
certifies is one the Control Plane accepts; here every requirement gets its own line with
the measured value, the need and, when it fails, a reason a person can act on
("cpu: 1 core, needs >= 2"). Memory and disk are decimal GB as the guide writes them
(3 GB = 3·10⁹ bytes); GiB is shown beside them because that is what firmware setup
screens and ``free -g`` print.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from controlplane.requirements import (
    MAX_CLOCK_SKEW_S,
    MIN_CPU_CORES,
    MIN_DISK_BYTES,
    MIN_MEMORY_BYTES,
    clock_reading,
)
from harness.macs import parse_mac
from harness.rules.model import Finding, Level, Verdict

_X86 = {"x86_64", "x86-64", "amd64"}
GB = 10**9
GIB = 1024**3


@dataclass(frozen=True)
class Requirement:
    """One requirement's outcome: what was measured, what is needed, why it failed."""

    name: str
    ok: bool
    measured: str
    needed: str
    reason: str = ""       # empty when ok
    warning: str = ""      # worth reading, does not fail the machine

    def to_json(self) -> dict[str, Any]:
        """JSON-safe form for certification.json."""
        return asdict(self)


def gb(n: int) -> str:
    """``n`` bytes in both units the reader may think in: ``2.00 GB (1.86 GiB)``."""
    return f"{n / GB:.2f} GB ({n / GIB:.2f} GiB)"


def judge_arch(facts: dict[str, Any]) -> Requirement:
    """x86-64 only (the node image and KubeFlex builds are amd64)."""
    arch = str(facts.get("arch", "?"))
    ok = arch.lower() in _X86
    return Requirement("arch", ok, arch, "x86-64", "" if ok else f"arch: {arch}, needs x86-64")


def judge_cpu(facts: dict[str, Any]) -> Requirement:
    """At least MIN_CPU_CORES logical cores."""
    cores = int(facts.get("cpu_cores", 0) or 0)
    ok = cores >= MIN_CPU_CORES
    noun = "core" if cores == 1 else "cores"
    return Requirement("cpu", ok, f"{cores} {noun}", f">= {MIN_CPU_CORES} cores",
                       "" if ok else f"cpu: {cores} {noun}, needs >= {MIN_CPU_CORES}")


def judge_memory(facts: dict[str, Any]) -> Requirement:
    """At least 3 GB = 3·10⁹ bytes (decimal, as the guide and the Control Plane count)."""
    mem = int(facts.get("memory_bytes", 0) or 0)
    ok = mem >= MIN_MEMORY_BYTES
    need = f">= {gb(MIN_MEMORY_BYTES)} = {MIN_MEMORY_BYTES} bytes"
    return Requirement("memory", ok, gb(mem), need,
                       "" if ok else f"memory: {gb(mem)}, needs >= {MIN_MEMORY_BYTES // GB} GB "
                       f"({MIN_MEMORY_BYTES / GIB:.2f} GiB)")


def judge_disk(facts: dict[str, Any]) -> Requirement:
    """At least one disk of 10 GB = 10·10⁹ bytes or more."""
    disks = [d for d in facts.get("disks") or [] if isinstance(d, dict)]
    if not disks:
        return Requirement("disk", False, "no disk reported", f">= {MIN_DISK_BYTES // GB} GB",
                           f"disk: none reported, needs one >= {MIN_DISK_BYTES // GB} GB")
    biggest = max(disks, key=lambda d: int(d.get("size_bytes", 0) or 0))
    size = int(biggest.get("size_bytes", 0) or 0)
    ok = size >= MIN_DISK_BYTES
    listing = ", ".join(f"{d.get('name', '?')} {gb(int(d.get('size_bytes', 0) or 0))}"
                        for d in disks)
    return Requirement("disk", ok, listing, f"one disk >= {gb(MIN_DISK_BYTES)}",
                       "" if ok else f"disk: largest is {biggest.get('name', '?')} {gb(size)}, "
                       f"needs >= {MIN_DISK_BYTES // GB} GB on one disk")


def judge_pxe_nic(facts: dict[str, Any], mac: str, discover_seen: bool) -> Requirement:
    """The machine PXE-booted from the chosen NIC: its DISCOVER came from MAC and the
    registered NICs include MAC (so the NIC that booted is the one the node reports)."""
    mac = parse_mac(mac) or mac
    nics = [n for n in facts.get("nics") or [] if isinstance(n, dict)]
    listed = any(parse_mac(str(n.get("mac", ""))) == mac for n in nics)
    shown = ", ".join(f"{n.get('name', '?')} {n.get('mac', '?')}" for n in nics) or "none"
    reasons = []
    if not discover_seen:
        reasons.append(f"no DHCPDISCOVER from {mac} was captured")
    if not listed:
        reasons.append(f"the node's NICs ({shown}) do not include {mac}")
    measured = (f"DISCOVER from {mac}: {'yes' if discover_seen else 'no'}; "
                f"registered NICs: {shown}")
    return Requirement("pxe_nic", not reasons, measured, f"PXE boot from {mac}",
                       "pxe: " + "; ".join(reasons) if reasons else "")


def judge_firmware(facts: dict[str, Any], dhcp_firmware: str | None) -> Requirement:
    """EFI or legacy BIOS, as the DISCOVER's option 93 says and the node confirms."""
    node = str(facts.get("firmware", "") or "")
    measured = f"option 93: {dhcp_firmware or 'absent'}; node: {node or 'not reported'}"
    dhcp_family = None if dhcp_firmware is None else (
        "bios" if dhcp_firmware == "bios"
        else "efi" if dhcp_firmware in ("efi-x64", "efi-http-x64") else "other")
    if node not in ("efi", "bios"):
        return Requirement("firmware", False, measured, "EFI or legacy BIOS",
                           f"firmware: node reports {node or 'nothing'}, needs efi or bios")
    if dhcp_family == "other":
        return Requirement("firmware", False, measured, "EFI or legacy BIOS",
                           f"firmware: option 93 names {dhcp_firmware}, not x86 BIOS or x64 EFI")
    if dhcp_family is not None and dhcp_family != node:
        return Requirement("firmware", False, measured, "EFI or legacy BIOS, consistently",
                           f"firmware: the ROM said {dhcp_firmware} (option 93) but the booted "
                           f"node reports {node}")
    warning = "" if dhcp_family else "no option 93 in the DISCOVER: firmware taken from the node"
    return Requirement("firmware", True, measured, "EFI or legacy BIOS", warning=warning)


def judge_clock(facts: dict[str, Any], registered_at: float | None) -> Requirement:
    """The node's clock within MAX_CLOCK_SKEW_S of the site's time, judged by the figure
    the Control Plane judges (``clock_reading``): the offset the node measured itself (NTP,
    or two-way with ``GET /api/v1/time``, within its bound), else ``clock_unix`` against
    our clock when it registered. A one-way comparison alone would count a slow guest's
    send time as skew and refuse a machine the Control Plane accepts."""
    clock = facts.get("clock_unix")
    if clock is None or registered_at is None:
        return Requirement("clock", False, "unknown", f"within {MAX_CLOCK_SKEW_S:g} s",
                           "clock: the node reported no clock_unix")
    try:
        reading = clock_reading(
            clock_unix=float(clock), cp_clock=registered_at, source=facts.get("clock_source"),
            offset_s=_float_or_none(facts.get("clock_offset_s")),
            error_s=_float_or_none(facts.get("clock_error_s")),
            server=facts.get("clock_server"))
    except (TypeError, ValueError):
        return Requirement("clock", False, "unreadable", f"within {MAX_CLOCK_SKEW_S:g} s",
                           f"clock: the node reported an unreadable clock_unix {clock!r}")
    assert reading is not None  # clock_unix was given
    need = f"within ±{MAX_CLOCK_SKEW_S:g} s"
    if reading.too_far:
        return Requirement("clock", False, reading.describe(), need,
                           f"clock: {reading.describe()} exceeds {MAX_CLOCK_SKEW_S:g} s (set "
                           "the RTC, or NTP in the node image)")
    return Requirement("clock", True, reading.describe(), need, "")


def _float_or_none(value: Any) -> float | None:
    """A reported number, or None when absent or not a number (then it is not used)."""
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def judge_client_rules(findings: Iterable[Finding]) -> Requirement:
    """The ROM's own packets (rules CLI-*): a MUST failure fails the machine, a SHOULD
    failure is a warning. Findings about the Boot Proxy or the site never fail a machine."""
    client = [f for f in findings if f.rule_id.startswith("CLI-")
              and f.verdict is Verdict.FAIL]
    must = [f for f in client if f.level is Level.MUST]
    should = [f for f in client if f.level is Level.SHOULD]
    measured = f"{len(must)} MUST and {len(should)} SHOULD failures in CLI-* rules"
    return Requirement(
        "firmware_rules", not must, measured, "no MUST failure in CLI-* rules",
        "; ".join(f"rules: {f.rule_id} {f.message}" for f in must),
        "; ".join(f"{f.rule_id} {f.message}" for f in should))


def judge_machine(facts: dict[str, Any], mac: str, *, discover_seen: bool,
                  dhcp_firmware: str | None, registered_at: float | None,
                  findings: Iterable[Finding] = ()) -> list[Requirement]:
    """Every machine requirement, in the guide's order."""
    return [judge_arch(facts), judge_cpu(facts), judge_memory(facts), judge_disk(facts),
            judge_pxe_nic(facts, mac, discover_seen), judge_firmware(facts, dhcp_firmware),
            judge_clock(facts, registered_at), judge_client_rules(findings)]
