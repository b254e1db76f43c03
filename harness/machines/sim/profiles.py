"""Firmware profiles: what one family of real PXE ROMs puts on the wire, and its timers.

The facts come from the firmware sources and captures (iPXE ``src/net/udp/dhcp.c``
and ``config/dhcp.h``; EDK2 ``NetworkPkg/UefiPxeBcDxe/PxeBcDhcp4.c``,
``HttpBootDxe``, ``Dhcp4Dxe``; the Intel PXE 2.1 spec; CONFORMANCE.md):

- iPXE: options 53, 57, 93, 94, 60, 77 "iPXE", 55, then 175 (features), 61, 97;
  DISCOVER retried after 1, 2, 4, 8 s; takes the first address offer and waits
  ~2 s more for a ProxyDHCP offer; ProxyDHCPREQUEST to 4011 from port 68.
- PXE 2.1 ROMs and EDK2: options 53, 57, 55, 97, 94, 93, 60; DISCOVER retried
  after 4, 8, 16, 32 s; offers collected for a window (EDK2 ``DHCP_WAIT_OFFER``,
  ~3.5 s wall) before choosing; EDK2 sends its 4011 request from port 4011 and
  probes TFTP sizes with ``tsize 0`` then aborts with ERROR 8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from harness.machines.sim.errors import SimMachineError

#: EDK2 PxeBc's parameter request list (PxeBcBuildDhcp4Options).
# as OVMF sends it (golden capture fixtures/pcaps/golden_ovmf-pxe_dnsmasq.pcap): 97 before 128
EDK2_PARAMS = bytes([1, 2, 3, 4, 5, 6, 12, 13, 15, 17, 18, 22, 23, 28, 40, 41, 42, 43, 50, 51,
                     54, 58, 59, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135])
#: iPXE's parameter request list (dhcp_request_options_data).
IPXE_PARAMS = bytes([1, 3, 6, 7, 12, 15, 17, 26, 43, 60, 66, 67, 119, 128, 129, 130, 131,
                     132, 133, 134, 135, 175, 203])
#: A typical Intel Boot Agent (PXE 2.1) list.
INTEL_PARAMS = bytes([1, 2, 3, 5, 6, 11, 12, 13, 15, 16, 17, 18, 43, 54, 60, 67, 128, 129,
                      130, 131, 132, 133, 134, 135])
#: iPXE option 175 feature flags: PXE ext (0x10), HTTP (0x13), DNS (0x17), TFTP (0x15),
#: bzImage (0x18), ELF (0x1c), COMBOOT (0x21) — each a one-byte flag.
IPXE_FEATURES = bytes([0x15, 0x01, 0x01, 0x13, 0x01, 0x01, 0x17, 0x01, 0x01, 0x18, 0x01,
                       0x01, 0x10, 0x01, 0x02])

PXE_ORDER = (57, 55, 97, 94, 93, 60)
IPXE_ORDER = (57, 93, 94, 60, 77, 55, 175, 61, 97)


@dataclass(frozen=True)
class FirmwareProfile:
    """One firmware family's wire behaviour; all times are firmware seconds (unscaled).

    ``discover_timeouts`` are the waits after each DISCOVER; ``collect_window``
    (PXE/EDK2) is how long offers are gathered before choosing, counted from
    the first DISCOVER; ``proxy_wait`` (iPXE) is how long to wait for a
    ProxyDHCP offer after the first address offer. ``chain`` says what the
    boot file is: ``ipxe`` (TFTP a binary that then runs an iPXE DHCP round),
    ``script`` (already iPXE: the boot file is the script URL) or ``http``
    (UEFI HTTP boot: GET the URL).
    """

    name: str
    description: str
    arch: int
    vendor_prefix: str = "PXEClient"
    undi: tuple[int, int] = (2, 1)
    nii: bytes = b"\x01\x02\x01"
    option_order: tuple[int, ...] = PXE_ORDER
    param_list: bytes = INTEL_PARAMS
    max_msg_size: int = 1260
    send_uuid: bool = True
    user_class: bytes | None = None
    ipxe_features: bytes | None = None
    broadcast_flag: bool = True
    discover_timeouts: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0)
    request_timeouts: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0)
    collect_window: float | None = 3.5
    proxy_wait: float | None = None
    pxebs_timeouts: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    pxebs_sport: int = 68
    pxebs_order: tuple[int, ...] | None = None  # option order of the 4011 request if it differs
    pxebs_broadcast: bool = False  # iPXE sets the broadcast flag on its 4011 request
    pxebs_server_id: bool = False  # iPXE names the proxy in option 54, after 97
    ipxe_proxy_request: bool = False
    chain: str = "ipxe"
    tftp_tsize_probe: bool = False
    tftp_blksize: int | None = 1432
    tftp_windowsize: int | None = None
    tftp_timeouts: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)

    @property
    def vendor_class(self) -> bytes:
        """Option 60 (32 bytes for PXEClient: CLI-1)."""
        major, minor = self.undi
        return f"{self.vendor_prefix}:Arch:{self.arch:05d}:UNDI:{major:03d}{minor:03d}".encode()

    @property
    def is_ipxe(self) -> bool:
        """True when this firmware is iPXE (it marks itself with user class ``iPXE``)."""
        return self.user_class == b"iPXE"

    def ipxe_stage(self) -> FirmwareProfile:
        """The iPXE this firmware chainloads (undionly.kpxe or ipxe.efi) for the second round."""
        efi = self.arch != 0
        return replace(
            IPXE_ROM,
            name=f"{self.name}+ipxe",
            description=f"iPXE chainloaded by {self.name}",
            arch=7 if efi else 0,
            undi=(3, 10) if efi else (2, 1),
            nii=b"\x01\x03\x0a" if efi else b"\x01\x02\x01",
            chain="script",
        )


IPXE_ROM = FirmwareProfile(
    name="ipxe-bios",
    description="SeaBIOS with the iPXE option ROM (QEMU's default NIC ROM)",
    arch=0,
    option_order=IPXE_ORDER,
    param_list=IPXE_PARAMS,
    max_msg_size=1472,
    user_class=b"iPXE",
    pxebs_broadcast=True,
    pxebs_server_id=True,
    ipxe_features=IPXE_FEATURES,
    broadcast_flag=False,
    discover_timeouts=(1.0, 2.0, 4.0, 8.0, 10.0),
    request_timeouts=(1.0, 2.0, 4.0, 8.0, 10.0),
    collect_window=None,
    proxy_wait=2.0,
    ipxe_proxy_request=True,
    chain="script",
    tftp_blksize=1432,
)

PXE_BIOS = FirmwareProfile(
    name="pxe-bios",
    description="a plain BIOS PXE 2.1 ROM: chainloads undionly.kpxe, then an iPXE round",
    arch=0,
)

#: What every EDK2-based UEFI network stack announces, whatever it boots: UNDI 3.0 and its
#: NII, EDK2's parameter request list, a 1472-byte maximum message. Not a profile a
#: machine boots with (it is not in PROFILES): the EDK2 profiles below are it plus their own.
EDK2_UEFI = FirmwareProfile(
    name="edk2-uefi",
    description="EDK2's UEFI network stack: what every EDK2 profile shares",
    arch=7,
    undi=(3, 0),
    nii=b"\x01\x03\x00",
    param_list=EDK2_PARAMS,
    max_msg_size=1472,
)

EDK2_X64 = replace(
    EDK2_UEFI,
    name="edk2-x64",
    description="EDK2/OVMF UEFI x64 PXE (UefiPxeBcDxe), NIC without an iPXE ROM",
    arch=7,
    pxebs_sport=4011,
    pxebs_order=(55, 57, 60, 93, 94, 97),  # EDK2 builds its 4011 REQUEST in another order
    tftp_tsize_probe=True,
    tftp_blksize=1468,
    tftp_windowsize=4,
)

EDK2_HTTP = replace(
    EDK2_UEFI,
    name="edk2-http",
    description="EDK2 UEFI HTTP boot (HttpBootDxe), arch 16",
    arch=16,
    vendor_prefix="HTTPClient",
    chain="http",
)

INTEL_NO97 = FirmwareProfile(
    name="intel-no97",
    description="an Intel-like BIOS PXE ROM that sends no option 97 (no UUID)",
    arch=0,
    send_uuid=False,
)

HW_CLIENT = replace(
    EDK2_UEFI,
    name="hw-client",
    description="a Huawei-style UEFI ROM announcing option 60 'HW-Client'",
    arch=7,
    vendor_prefix="HW-Client",
    tftp_blksize=1468,
)

PROFILES: dict[str, FirmwareProfile] = {
    p.name: p for p in (IPXE_ROM, PXE_BIOS, EDK2_X64, EDK2_HTTP, INTEL_NO97, HW_CLIENT)
}


def profile(name: str) -> FirmwareProfile:
    """The built-in profile called ``name``."""
    try:
        return PROFILES[name]
    except KeyError:
        raise SimMachineError(
            f"unknown firmware profile {name!r}; choose one of {', '.join(PROFILES)}"
        ) from None
