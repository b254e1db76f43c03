"""The firmware emulators against real firmware: do they put the same things on the wire?

The golden captures (fixtures/pcaps/golden_*_dnsmasq.pcap, recorded from
QEMU by scripts/record-golden.py) hold what SeaBIOS's iPXE ROM, OVMF's own
EDK2 PXE stack and OVMF's iPXE EFI really send. For each DISCOVER and 4011
REQUEST there, the matching emulator profile builds its message for the same
situation (harness.machines.sim.dhcp.client_message) and the two are compared
in the fields the conformance rules read: option codes and their order,
option 60 prefix and arch, 93/94/97 presence and lengths, 77/175 presence,
the parameter request list, UDP ports and the broadcast flag.

Where an emulator differs from the firmware the case is xfail(strict=True)
with the exact difference as its reason: the profile is to be fixed, and the
strict xfail turns into a failure the day it is, so the mark gets removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.capture.dhcp_codec import parse_dhcp
from harness.capture.events import DhcpEvent
from harness.machines.sim.dhcp import ClientIdentity, client_message
from harness.machines.sim.profiles import FirmwareProfile, profile

pytestmark = pytest.mark.unit

PCAPS = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"
DISCOVER, REQUEST = 1, 3
UUID = bytes(range(16))


@dataclass(frozen=True)
class Shape:
    """The parts of a client message the rules read, comparable field by field."""

    option_codes: tuple[int, ...]
    vendor_class: str | None
    lengths: tuple[tuple[int, int | None], ...]  # 93, 94, 97: length or None when absent
    user_class: bool
    ipxe_features: bool
    param_list: tuple[int, ...] | None
    sport: int
    dport: int
    broadcast: bool

    def differences(self, emulator: Shape) -> list[str]:
        """What the emulator (``emulator``) does differently from this real message."""
        out = []
        for name in self.__dataclass_fields__:
            real, emu = getattr(self, name), getattr(emulator, name)
            if real != emu:
                out.append(f"{name}: firmware {real!r}, emulator {emu!r}")
        return out


def _shape(options: tuple[tuple[int, bytes], ...], flags: int, sport: int, dport: int) -> Shape:
    opts = dict(options)

    def length(code: int) -> int | None:
        return len(opts[code]) if code in opts else None

    vc = opts.get(60)
    return Shape(
        option_codes=tuple(code for code, _ in options),
        vendor_class=vc.decode(errors="replace") if vc is not None else None,
        lengths=tuple((c, length(c)) for c in (93, 94, 97)),
        user_class=77 in opts,
        ipxe_features=175 in opts,
        param_list=tuple(opts[55]) if 55 in opts else None,
        sport=sport,
        dport=dport,
        broadcast=bool(flags & 0x8000),
    )


def _real(event: DhcpEvent) -> Shape:
    return _shape(event.options, event.flags, event.sport, event.dport)


def _emulated(prof: FirmwareProfile, real: DhcpEvent, offer_menu: bool) -> Shape:
    """The emulator's message in the situation of ``real`` (as harness.machines.sim.machine)."""
    ident = ClientIdentity(real.chaddr, UUID)
    if real.dport == 4011:
        # machine.py: iPXE first sends a plain ProxyDHCPREQUEST; others name the first
        # menu item only when the proxy's offer carried a menu (43.9).
        item = None
        if offer_menu:  # a menu makes every firmware (iPXE too) ask for a boot item
            item = (_menu_item(real), 0)
        payload = client_message(prof, ident, REQUEST, real.xid, ciaddr=real.ciaddr,
                                 boot_item=item, pxebs_server=real.dst_ip)
        sport, dport = prof.pxebs_sport, 4011
    else:
        payload = client_message(prof, ident, DISCOVER, real.xid)
        sport, dport = 68, 67
    fields = parse_dhcp(payload)
    return _shape(fields.options, fields.flags, sport, dport)


def _menu_item(real: DhcpEvent) -> int:
    """The boot item type the firmware asked for (43.71), for the emulator to ask the same."""
    raw = dict(real.options).get(43, b"")
    i = 0
    while i + 1 < len(raw) and raw[i] != 255:
        code, size = raw[i], raw[i + 1]
        if code == 71 and size >= 2:
            return int.from_bytes(raw[i + 2:i + 4], "big")
        i += 2 + size
    return 0


@dataclass(frozen=True)
class Case:
    """One firmware message in one golden capture and the profile that emulates it."""

    pcap: str
    round: int  # 0: the firmware's own DHCP round; 1: the iPXE it chainloaded
    kind: str  # "DISCOVER" or "4011"
    profile: str

    @property
    def id(self) -> str:
        return f"{self.pcap.removeprefix('golden_').removesuffix('_dnsmasq.pcap')}" \
               f"-r{self.round}-{self.kind}-vs-{self.profile}"


def _profile(name: str) -> FirmwareProfile:
    base, _, stage = name.partition("+")
    prof = profile(base)
    return prof.ipxe_stage() if stage == "ipxe" else prof


CASES = [
    Case("golden_seabios-ipxe_dnsmasq.pcap", 0, "DISCOVER", "ipxe-bios"),
    Case("golden_seabios-ipxe_dnsmasq.pcap", 0, "4011", "ipxe-bios"),
    Case("golden_ovmf-pxe_dnsmasq.pcap", 0, "DISCOVER", "edk2-x64"),
    Case("golden_ovmf-pxe_dnsmasq.pcap", 0, "4011", "edk2-x64"),
    Case("golden_ovmf-pxe_dnsmasq.pcap", 1, "DISCOVER", "edk2-x64+ipxe"),
    Case("golden_ovmf-pxe_dnsmasq.pcap", 1, "4011", "edk2-x64+ipxe"),
    # No profile is OVMF's iPXE EFI ROM itself; edk2-x64's chainloaded stage is the same iPXE.
    Case("golden_ovmf-ipxe_dnsmasq.pcap", 0, "DISCOVER", "edk2-x64+ipxe"),
    Case("golden_ovmf-ipxe_dnsmasq.pcap", 0, "4011", "edk2-x64+ipxe"),
]

#: The differences found, per case id (see each case's failure output for the full list).
KNOWN_DIFFERENCES: dict[str, str] = {}


def _rounds(pcap: Path) -> list[list[DhcpEvent]]:
    """Client messages grouped by DHCP round (a new round starts at each DISCOVER after a 4011)."""
    rounds: list[list[DhcpEvent]] = []
    seen_4011 = True
    for e in decode_pcap(str(pcap)).dhcp:
        if e.op != 1:
            continue
        if e.msg_type == "DISCOVER" and seen_4011:
            rounds.append([])
            seen_4011 = False
        if rounds:
            rounds[-1].append(e)
        seen_4011 = seen_4011 or e.dport == 4011
    return rounds


def _offer_had_menu(pcap: Path, real: DhcpEvent) -> bool:
    """Did a ProxyDHCP OFFER before ``real`` carry option 43 (a PXE menu)?"""
    return any(e.op == 2 and e.msg_type == "OFFER" and e.frame < real.frame
               and 43 in dict(e.options) for e in decode_pcap(str(pcap)).dhcp)


def _compare(case: Case) -> list[str]:
    pcap = PCAPS / case.pcap
    if not pcap.exists():
        pytest.fail(f"{case.pcap} missing: record it with scripts/record-golden.py (root)")
    messages = _rounds(pcap)[case.round]
    if case.kind == "DISCOVER":
        real = next(e for e in messages if e.msg_type == "DISCOVER")
    else:
        real = next(e for e in messages if e.dport == 4011)
    return _real(real).differences(
        _emulated(_profile(case.profile), real, _offer_had_menu(pcap, real)))


def _param(case: Case) -> object:
    reason = KNOWN_DIFFERENCES.get(case.id)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_emulator_message_matches_firmware(case: Case) -> None:
    differences = _compare(case)
    assert differences == [], "\n".join(differences)


def test_known_differences_name_real_cases() -> None:
    """A typo in KNOWN_DIFFERENCES would silently un-xfail nothing: every key is a case."""
    assert set(KNOWN_DIFFERENCES) <= {c.id for c in CASES}


def test_comparison_can_fail() -> None:
    """The comparison sees a difference when there is one: pxe-bios is not SeaBIOS's iPXE."""
    pcap = PCAPS / "golden_seabios-ipxe_dnsmasq.pcap"
    real = _rounds(pcap)[0][0]
    diff = _real(real).differences(_emulated(profile("pxe-bios"), real, False))
    assert any(d.startswith("option_codes") for d in diff)
    assert any(d.startswith("user_class") for d in diff)
