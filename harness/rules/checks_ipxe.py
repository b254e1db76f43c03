"""IPXE-*: chainloading iPXE and UEFI HTTP boot."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from harness.capture.events import DhcpEvent
from harness.rules.analysis import ZERO, Analysis, TftpTransfer
from harness.rules.judge import Judge, between, check

BINARY_SUFFIXES = (".kpxe", ".pxe", ".efi", ".lkrn", ".0", ".com", ".undi")
UEFI_ARCH = frozenset({6, 7, 9, 10, 11, 15, 16, 18, 19})


def boot_replies(an: Analysis) -> list[tuple[DhcpEvent, DhcpEvent]]:
    """(request, proxy reply) pairs where the reply names a boot file."""
    out = []
    for r in an.proxy_replies():
        q = an.request_of(r)
        name = r.file or r.bootfile_opt
        if q is not None and name and r.msg_type in ("OFFER", "ACK"):
            out.append((q, r))
    return out


def _is_binary(name: str) -> bool:
    path = urlparse(name).path if "://" in name else name
    return path.lower().endswith(BINARY_SUFFIXES)


@check("IPXE-1")
def ipxe1(an: Analysis, j: Judge) -> None:
    """Binary to non-iPXE clients (right architecture), script to iPXE clients."""
    j.not_applicable("no proxy reply naming a boot file for a PXE client")
    for q, r in boot_replies(an):
        if not (q.vendor_class or "").startswith("PXEClient"):
            continue
        name = r.file or r.bootfile_opt or ""
        frames = [q.frame, r.frame]
        if q.is_ipxe:
            j.expect(
                not _is_binary(name),
                f"iPXE client got {name!r} again: the chainload loops forever; give it the "
                "script URL",
                frames,
                q.chaddr,
                r.src_ip,
            )
            continue
        arch = q.client_arch[0] if q.client_arch else None
        efi = name.lower().endswith(".efi")
        if not _is_binary(name):
            j.fail(
                f"PXE ROM (no iPXE marker) got {name!r}, which is not an iPXE binary",
                frames,
                q.chaddr,
                r.src_ip,
            )
        elif arch is not None and (arch in UEFI_ARCH) != efi:
            j.fail(
                f"architecture {arch} got {name!r}, a binary for the other firmware type",
                frames,
                q.chaddr,
                r.src_ip,
            )
        else:
            j.checked()


def _tftp_reads(an: Analysis, mac: str, name: str, server: str, after: float
                ) -> list[TftpTransfer]:
    """Reads of ``name`` (a relative boot file) the client ``mac`` made from ``server``
    after it was given the name."""
    return [t for t in an.transfers
            if t.request.filename is not None and t.request.filename.lstrip("/") == name.lstrip("/")
            and t.server_ip == server and an.mac_of(t.request.src_ip) == mac
            and t.request.time >= after]


# iPXE's TFTP gives up after a few seconds of silence; a read unanswered this long
# (scaled) before the capture ended has failed
TFTP_SILENCE_S = 3.0


def _read_failure(an: Analysis, reads: list[TftpTransfer]) -> tuple[str, list[int]] | None:
    """Why the client's reads of its relative name failed, with the frames; None when
    one of them got data (or the capture ended before failure could show)."""
    if not reads or any(e.op_name in ("DATA", "OACK") for t in reads for e in t.from_server()):
        return None
    for t in reads:
        err = next((e for e in t.from_server() if e.op_name == "ERROR"), None)
        if err is not None:
            why = f"ERROR {err.error_code} {err.error_msg or ''}".rstrip()
            return why, [t.request.frame, err.frame]
    last = reads[-1].request
    if an.end_time - last.time >= an.scaled(TFTP_SILENCE_S):
        return "no answer at all", [t.request.frame for t in reads]
    return None


@check("IPXE-2")
def ipxe2(an: Analysis, j: Judge) -> None:
    """iPXE gets a name it can fetch: a full URL, or a relative name that iPXE resolves
    against ``tftp://siaddr/`` — wrong only when siaddr is 0 or that TFTP read fails
    (an ERROR, or silence) and no read of it succeeds."""
    j.not_applicable("no boot file given to an iPXE client")
    for q, r in boot_replies(an):
        if not q.is_ipxe:
            continue
        name = r.file or r.bootfile_opt or ""
        if urlparse(name).scheme in ("http", "https", "tftp"):
            j.checked()
            continue
        if r.siaddr == ZERO:
            j.fail(f"iPXE was given the relative name {name!r} with siaddr 0.0.0.0: it has "
                   "no server to fetch it from; give a full http:// or tftp:// URL or set "
                   "next-server", *between(q, r))
            continue
        failure = _read_failure(an, _tftp_reads(an, q.chaddr, name, r.siaddr, r.time))
        if failure is not None:
            why, frames = failure
            j.fail(f"iPXE was given the relative name {name!r}; its TFTP read from "
                   f"tftp://{r.siaddr}/ failed ({why})", [q.frame, r.frame, *frames],
                   q.chaddr, r.src_ip)
        else:
            j.checked(note=f"relative names resolved against tftp://{r.siaddr}/")


@check("IPXE-3")
def ipxe3(an: Analysis, j: Judge) -> None:
    """Report whether per-machine script URLs carry the MAC or UUID."""
    j.not_applicable("no script URL given to an iPXE client")
    for q, r in boot_replies(an):
        if not q.is_ipxe:
            continue
        name = (r.file or r.bootfile_opt or "").lower()
        if q.chaddr in name or "${mac" in name or "${uuid" in name:
            j.checked(note="script URLs carry the MAC")
        else:
            j.checked(note="script URL is not keyed on the MAC (the server may key on source)")


def _dns_given(an: Analysis, mac: str) -> bool:
    return any(r.has_option(6) for r in an.replies if r.chaddr == mac and r.yiaddr != ZERO)


@check("IPXE-4")
def ipxe4(an: Analysis, j: Judge) -> None:
    """HTTP boot offers: absolute URL, IP literal host when no DNS is offered."""
    j.not_applicable("no HTTPClient was offered HTTP boot")
    for q, r in boot_replies(an) + [
        (q, r) for r in an.proxy_offers() if (q := an.request_of(r)) and not r.file
    ]:
        if not (q.vendor_class or "").startswith("HTTPClient") or r.msg_type != "OFFER":
            continue
        url = r.bootfile_opt or r.file or ""
        u = urlparse(url)
        frames = [q.frame, r.frame]
        if u.scheme not in ("http", "https") or not u.hostname:
            j.fail(f"HTTP boot offer carries {url!r}, not an absolute http URL", frames, q.chaddr)
            continue
        try:
            ipaddress.ip_address(u.hostname)
            literal = True
        except ValueError:
            literal = False
        if not literal and not _dns_given(an, q.chaddr):
            j.fail(
                f"URL host {u.hostname!r} is a name but the site gives the client no DNS server",
                frames,
                q.chaddr,
                r.src_ip,
            )
        else:
            j.checked()


@check("IPXE-5")
def ipxe5(an: Analysis, j: Judge) -> None:
    """HEAD answered like GET."""
    j.not_applicable("no HTTP HEAD request in the capture")
    for h in an.http:
        if h.request.method != "HEAD":
            continue
        resp = h.response
        if resp is None or resp.status is None or resp.status >= 400:
            got = "no response" if resp is None else f"status {resp.status}"
            frames = [h.request.frame] + ([resp.frame] if resp else [])
            j.fail(
                f"HEAD {h.request.path} got {got}; EDK2 HTTP boot probes with HEAD first",
                frames,
                None,
                h.request.dst_ip,
            )
        else:
            j.checked()
