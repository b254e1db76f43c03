"""CLI-*: what clients send. Used to classify traffic and to vet client emulators."""

from __future__ import annotations

import re

from harness.rules.analysis import Analysis
from harness.rules.judge import Judge, check

PXE_VC = re.compile(r"^PXEClient:Arch:(\d{5}):UNDI:(\d{6})$")
ANY_ARCH_VC = re.compile(r"^(PXEClient|HTTPClient):Arch:(\d{5})")
KNOWN_ARCH = frozenset(range(0, 0x28))  # IANA registry entries 0..39
COMMON_ARCH = frozenset({0, 6, 7, 9, 10, 11, 15, 16, 18, 19})
HTTP_ARCH = frozenset({15, 16, 18, 19, 20, 21, 22, 23, 24, 25})


def _pxe_requests(an: Analysis) -> list:
    return [q for q in an.requests if q.vendor_class and q.vendor_class.startswith("PXEClient")]


@check("CLI-1")
def cli1(an: Analysis, j: Judge) -> None:
    """PXEClient option 60 format and companions 93/94/97 in DISCOVERs."""
    j.not_applicable("no PXEClient DISCOVER in the capture")
    for q in _pxe_requests(an):
        if q.msg_type != "DISCOVER":
            continue
        vc = q.vendor_class or ""
        missing = [str(c) for c in (93, 94, 97) if not q.has_option(c)]
        if not PXE_VC.match(vc):
            j.fail(f"option 60 {vc!r} is not PXEClient:Arch:NNNNN:UNDI:MMMmmm", [q.frame], q.chaddr)
        elif missing:
            j.fail(
                f"PXE DISCOVER without option(s) {', '.join(missing)} (some Intel ROMs omit 97)",
                [q.frame],
                q.chaddr,
            )
        else:
            j.checked()


@check("CLI-2")
def cli2(an: Analysis, j: Judge) -> None:
    """Encoding of options 93, 94, 97 in client requests."""
    j.not_applicable("no client sent options 93, 94 or 97")
    for q in an.requests:
        bad = []
        v93, v94, v97 = q.option(93), q.option(94), q.option(97)
        if v93 is not None and (not v93 or len(v93) % 2):
            bad.append(f"option 93 is {len(v93)} bytes (needs a non-empty even length)")
        if v94 is not None and len(v94) != 3:
            bad.append(f"option 94 is {len(v94)} bytes (needs 3)")
        if v97 is not None and (len(v97) != 17 or v97[0] != 0):
            bad.append(f"option 97 is {len(v97)} bytes starting {v97[:1].hex()} (needs 17, type 0)")
        if bad:
            j.fail("; ".join(bad), [q.frame], q.chaddr)
        elif v93 is not None or v94 is not None or v97 is not None:
            j.checked()


@check("CLI-3")
def cli3(an: Analysis, j: Judge) -> None:
    """Architecture codes registered, and consistent between option 60 and 93."""
    j.not_applicable("no client sent option 93")
    for q in an.requests:
        if q.client_arch is None:
            continue
        unknown = [a for a in q.client_arch if a not in KNOWN_ARCH]
        m = ANY_ARCH_VC.match(q.vendor_class or "")
        if unknown:
            j.fail(f"unregistered architecture code(s) {unknown} in option 93", [q.frame], q.chaddr)
        elif m and q.client_arch and int(m.group(2)) != q.client_arch[0]:
            j.fail(
                f"option 60 says Arch {int(m.group(2))} but option 93 says {q.client_arch[0]}",
                [q.frame],
                q.chaddr,
            )
        else:
            j.checked()


@check("CLI-4")
def cli4(an: Analysis, j: Judge) -> None:
    """iPXE marker: option 77 "iPXE" (raw or RFC 3004) together with option 175."""
    j.not_applicable("no iPXE client in the capture")
    for q in an.requests:
        if not q.is_ipxe:
            continue
        uc = q.user_class or b""
        if uc not in (b"iPXE", b"\x04iPXE"):
            j.fail(f"iPXE client with option 77 {uc!r}", [q.frame], q.chaddr)
        elif q.ipxe_features is None:
            j.fail("option 77 iPXE without option 175", [q.frame], q.chaddr)
        else:
            j.checked(note="iPXE clients seen")


@check("CLI-5")
def cli5(an: Analysis, j: Judge) -> None:
    """HTTPClient vendor class goes with an HTTP architecture code."""
    j.not_applicable("no HTTPClient in the capture")
    for q in an.requests:
        if not (q.vendor_class or "").startswith("HTTPClient"):
            continue
        if q.client_arch and q.client_arch[0] not in HTTP_ARCH:
            j.fail(f"HTTPClient with non-HTTP arch {q.client_arch[0]}", [q.frame], q.chaddr)
        else:
            j.checked(note="HTTP boot clients seen")
