"""The firmware's DHCP option set, read off its DISCOVER: what a vendor's ROM actually sends.

Certification records it because Boot Proxies differ in what they tolerate (option 97
absent, odd option 55 orders, HW-Client): a bundle with the real set lets anyone replay
that ROM against another proxy. The first DISCOVER is the ROM's; when the ROM chainloads
iPXE, iPXE's own DISCOVER is recorded too.
"""

from __future__ import annotations

import uuid as uuidlib
from typing import Any

from harness.capture.events import Capture, DhcpEvent

ARCH_NAMES = {0: "bios", 6: "efi-ia32", 7: "efi-x64", 9: "efi-x64", 10: "efi-arm32",
              11: "efi-arm64", 15: "efi-http-ia32", 16: "efi-http-x64", 18: "efi-http-arm32",
              19: "efi-http-arm64"}


def discovers(capture: Capture, mac: str) -> list[DhcpEvent]:
    """Every DISCOVER the machine sent, in capture order."""
    mac = mac.lower()
    return [e for e in capture.dhcp
            if e.op == 1 and e.chaddr == mac and e.msg_type == "DISCOVER"]


def firmware_kind(event: DhcpEvent | None) -> str | None:
    """bios / efi-x64 / efi-http-x64 ... from option 93 (its first code); None if absent."""
    if event is None or not event.client_arch:
        return None
    code = event.client_arch[0]
    return ARCH_NAMES.get(code, f"arch-{code}")


def _uuid(raw: bytes | None) -> str | None:
    if raw is None or len(raw) != 17:
        return raw.hex() if raw else None
    # option 97 carries the first three UUID fields little-endian (IPXE-3): show both forms
    return str(uuidlib.UUID(bytes_le=raw[1:]))


def option_set(event: DhcpEvent) -> dict[str, Any]:
    """One DISCOVER's options: order, 55 order, 60, 93, 94, 97, 77/175, 57, raw hex."""
    return {
        "frame": event.frame,
        "time": event.time,
        "xid": f"{event.xid:08x}",
        "options_order": [code for code, _ in event.options],
        "param_request_list_55": list(event.param_list or ()),
        "vendor_class_60": event.vendor_class,
        "client_arch_93": list(event.client_arch or ()),
        "firmware": firmware_kind(event),
        "nii_94": event.nii.hex() if event.nii is not None else None,
        "uuid_97": _uuid(event.uuid),
        "uuid_97_raw": event.uuid.hex() if event.uuid is not None else None,
        "user_class_77": (event.user_class.decode("latin-1")
                          if event.user_class is not None else None),
        "ipxe_features_175": (event.ipxe_features.hex()
                              if event.ipxe_features is not None else None),
        "max_msg_size_57": event.max_msg_size,
        "is_ipxe": event.is_ipxe,
        "raw_options": {str(code): value.hex() for code, value in event.options},
    }


def firmware_options(capture: Capture, mac: str) -> dict[str, Any]:
    """The ROM's option set and, if it chainloaded iPXE, iPXE's; plus how many DISCOVERs."""
    found = discovers(capture, mac)
    rom = found[0] if found else None
    ipxe = next((e for e in found if e.is_ipxe), None) if rom and not rom.is_ipxe else None
    return {
        "mac": mac.lower(),
        "discovers": len(found),
        "firmware": firmware_kind(rom),
        "rom": option_set(rom) if rom else None,
        "ipxe": option_set(ipxe) if ipxe else None,
    }
