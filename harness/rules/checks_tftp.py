"""TFTP-*: the boot file transfer (RFC 1350 and its option extensions)."""

from __future__ import annotations

from collections.abc import Iterator

from harness.capture.events import TftpEvent
from harness.rules.analysis import Analysis, TftpTransfer
from harness.rules.judge import Judge, check

KNOWN_OPTIONS = frozenset({"blksize", "tsize", "timeout", "windowsize"})
SYSTEM_DIRS = ("/etc", "/proc", "/sys", "/root", "/home", "/var", "/usr", "/dev", "/boot")
NO_TRANSFER = "no TFTP read request in the capture"


def _oack(t: TftpTransfer) -> TftpEvent | None:
    return next((e for e in t.from_server() if e.op_name == "OACK"), None)


def _blksize(t: TftpTransfer) -> int:
    o = _oack(t)
    value = dict(o.options).get("blksize") if o else None
    return int(value) if value and value.isdigit() else 512


def _data(t: TftpTransfer) -> list[TftpEvent]:
    return [e for e in t.from_server() if e.op_name == "DATA"]


def _transfers(an: Analysis, j: Judge) -> list[TftpTransfer]:
    j.not_applicable(NO_TRANSFER)
    return [t for t in an.transfers if t.request.op_name == "RRQ"]


def _with_data(an: Analysis, j: Judge) -> Iterator[tuple[TftpTransfer, list[TftpEvent]]]:
    """The read transfers the server sent DATA in, each with its DATA packets: the rules
    about blocks have nothing to judge in a transfer that carried none."""
    for t in _transfers(an, j):
        data = _data(t)
        if data:
            yield t, data


def _negotiated(an: Analysis, j: Judge) -> Iterator[tuple[TftpTransfer, TftpEvent]]:
    """The read transfers the server answered with an OACK, each with that OACK: the
    rules about option negotiation have nothing to judge without one."""
    for t in _transfers(an, j):
        oack = _oack(t)
        if oack is not None:
            yield t, oack


@check("TFTP-1", unit="transfer")
def tftp1(an: Analysis, j: Judge) -> None:
    """Answer from a fresh port other than 69, and keep it."""
    for t in _transfers(an, j):
        ports = sorted({e.sport for e in t.from_server()})
        replies = t.from_server()
        if not replies:
            continue
        frames = [t.request.frame, replies[0].frame]
        if 69 in ports:
            j.fail("server answered from port 69 instead of a new transfer port", frames)
        elif len(ports) > 1:
            j.fail(f"server changed its transfer port during the transfer: {ports}", frames)
        else:
            j.checked()


@check("TFTP-2", unit="transfer")
def tftp2(an: Analysis, j: Judge) -> None:
    """Block numbering and sizes; final short (possibly empty) block."""
    for t, data in _with_data(an, j):
        size = _blksize(t)
        seen: dict[int, int] = {}
        bad = []
        for e in data:
            seen.setdefault(e.block or 0, e.data_len or 0)
        blocks = sorted(seen)
        acked = {e.block or 0 for e in t.from_client() if e.op_name == "ACK"}
        missing = set(range(1, blocks[-1] + 1)) - set(blocks)
        if missing and max(blocks) < 65535 and max(acked, default=0) >= max(missing):
            # the client acknowledged data the capture does not hold: tcpdump lost it
            j.checked(note=f"capture lost {len(missing)} DATA packet(s); sizes not judged")
            continue
        if blocks[0] != 1:
            bad.append(f"first block is {blocks[0]}, not 1")
        elif missing and max(blocks) < 65535:
            bad.append(f"blocks skip numbers: {sorted(missing)[:10]} missing")
        last = blocks[-1]
        for b in blocks[:-1]:
            if seen[b] != size:
                bad.append(
                    f"block {b} has {seen[b]} bytes though it is not the last (blksize {size})"
                )
                break
        if seen[last] > size:
            bad.append(f"block {last} has {seen[last]} bytes, more than blksize {size}")
        oack = _oack(t)
        tsize = dict(oack.options).get("tsize") if oack else None
        total = sum(seen.values())
        exact = bool(tsize and tsize.isdigit() and total == int(tsize or 0))
        if seen[last] == size and exact and last in acked:
            bad.append(
                f"file size {total} is a multiple of blksize {size} but no zero-length "
                "final block was sent; the client waits forever"
            )
        j.expect(
            not bad,
            "; ".join(bad),
            [t.request.frame, data[0].frame],
            an.mac_of(t.request.src_ip),
            t.server_ip,
        )


@check("TFTP-3", unit="transfer")
def tftp3(an: Analysis, j: Judge) -> None:
    """OACK options were requested and are known."""
    for t, oack in _negotiated(an, j):
        asked = {k for k, _ in t.request.options}
        extra = [k for k, _ in oack.options if k not in asked or k not in KNOWN_OPTIONS]
        j.expect(
            not extra,
            f"OACK contains {extra}, not requested by the client (asked {sorted(asked)}); "
            "RFC 2347 clients must abort",
            [t.request.frame, oack.frame],
            an.mac_of(t.request.src_ip),
            t.server_ip,
        )


# A server packet this soon after the client's ERROR 8 was sent before the server saw it.
_IN_FLIGHT_S = 0.05


@check("TFTP-4", unit="transfer")
def tftp4(an: Analysis, j: Judge) -> None:
    """DATA only after ACK 0 following an OACK; silence after ERROR 8."""
    for t, oack in _negotiated(an, j):
        ack0 = next((e for e in t.from_client() if e.op_name == "ACK" and e.block == 0), None)
        err8 = next(
            (e for e in t.from_client() if e.op_name == "ERROR" and e.error_code == 8), None
        )
        data = _data(t)
        frames = [oack.frame]
        if err8 is not None:
            # an ERROR answering a stray packet after the abort is not "kept sending", nor
            # is a resend that crossed the ERROR 8 on the wire (sent before it arrived)
            after = [e for e in t.from_server()
                     if e.time > err8.time + _IN_FLIGHT_S and e.op_name != "ERROR"]
            if after:
                j.fail(
                    "server kept sending after the client's ERROR 8 (option refused)",
                    [*frames, err8.frame, after[0].frame],
                    an.mac_of(t.request.src_ip),
                    t.server_ip,
                )
                continue
        if data and (ack0 is None or data[0].time < ack0.time):
            j.fail(
                "server sent DATA without waiting for ACK 0 after its OACK",
                [*frames, data[0].frame],
                an.mac_of(t.request.src_ip),
                t.server_ip,
            )
        else:
            j.checked()


def _int(v: str | None) -> int | None:
    return int(v) if v is not None and v.isdigit() else None


@check("TFTP-5", unit="transfer")
def tftp5(an: Analysis, j: Judge) -> None:
    """Negotiated values within limits and consistent with the request."""
    for t, oack in _negotiated(an, j):
        asked = dict(t.request.options)
        given = dict(oack.options)
        bad = []
        for name in ("blksize", "timeout", "windowsize", "tsize"):
            if name not in given or name not in asked:
                continue  # options not asked for are TFTP-3's
            g, a = _int(given[name]), _int(asked[name])
            if g is None:
                bad.append(f"{name}={given[name]!r} is not a number")
            elif name == "blksize" and not (8 <= g <= 65464 and (a is None or g <= a)):
                bad.append(f"blksize {g} outside 8..{a or 65464}")
            elif name == "timeout" and not (1 <= g <= 255 and g == a):
                bad.append(f"timeout {g} is not the requested {a} (1..255)")
            elif name == "windowsize" and not (1 <= g <= 65535 and (a is None or g <= a)):
                bad.append(f"windowsize {g} outside 1..{a}")
        tsize = _int(given.get("tsize"))
        data = _data(t)
        if tsize is not None and data and data[-1].data_len is not None:
            blocks: dict[int, int] = {}
            for e in data:
                blocks.setdefault(e.block or 0, e.data_len or 0)
            complete = len(blocks) == max(blocks)
            if complete and blocks[max(blocks)] < _blksize(t) and sum(blocks.values()) != tsize:
                bad.append(f"tsize {tsize} but {sum(blocks.values())} bytes were sent")
        j.expect(
            not bad,
            "; ".join(bad),
            [t.request.frame, oack.frame],
            an.mac_of(t.request.src_ip),
            t.server_ip,
        )


def escapes_root(name: str | None) -> bool:
    """A requested path that leaves the boot root (``..`` or a system directory)."""
    return climbs_out(name) or (name or "").replace("\\", "/").startswith(SYSTEM_DIRS)


def climbs_out(name: str | None) -> bool:
    """The path climbs out of the root with a ``..`` component: an access violation
    whatever the server's root is (an absolute path may instead be read under the root,
    where it is simply not found: dnsmasq answers ERROR 1 for ``/etc/passwd``)."""
    return ".." in (name or "").replace("\\", "/").split("/")


MODES = ("octet", "netascii", "mail")
ERROR_NAMES = {0: "not defined", 1: "file not found", 2: "access violation", 3: "disk full",
               4: "illegal TFTP operation", 5: "unknown transfer ID", 6: "file exists",
               7: "no such user", 8: "option refused"}


def _right_refusals(t: TftpTransfer) -> tuple[set[int], str]:
    """The ERROR codes that may refuse this request (RFC 1350 §5, RFC 2347), and why."""
    q = t.request
    if q.op_name not in ("RRQ", "WRQ"):
        return {4}, f"opcode {q.opcode} is not a request: illegal operation is ERROR 4"
    if (q.mode or "").lower() not in MODES:
        return {4}, f"mode {q.mode!r} is unknown: illegal operation is ERROR 4"
    if q.op_name == "WRQ":
        # a boot server refuses uploads: not allowed (2) or not supported (4)
        return {2, 3, 4, 6}, "a write is refused with ERROR 2 or 4"
    if climbs_out(q.filename):
        return {2}, f"{q.filename!r} climbs out of the boot root: access violation is ERROR 2"
    codes = {1, 2} | ({8} if q.options else set())
    return codes, ("a missing file is ERROR 1 (2 for an access violation"
                   + (", 8 for refused options)" if q.options else ")"))


@check("TFTP-6", unit="error")
def tftp6(an: Analysis, j: Judge) -> None:
    """The right ERROR for the case (RFC 1350 §5): 1 for a missing file, 2 for an access
    violation (a path climbing out of the root), 4 for a bad opcode or mode; codes in
    range; errors not resent."""
    j.not_applicable("no TFTP error and no bad request in the capture")
    for t in an.transfers:
        q = t.request
        replies = t.from_server()
        errors = [e for e in replies if e.op_name == "ERROR"]
        mac = an.mac_of(q.src_ip)
        bad_request = q.op_name not in ("RRQ", "WRQ") or (q.mode or "").lower() not in MODES
        served = [e for e in replies if e.op_name in ("DATA", "OACK")]
        if bad_request and served:
            what = f"mode {q.mode!r}" if q.op_name in ("RRQ", "WRQ") else f"opcode {q.opcode}"
            j.fail(f"{what} should get ERROR 4 but the server answered {served[0].op_name}",
                   [q.frame, served[0].frame], mac, t.server_ip)
            continue
        for e in errors:
            if e.error_code is None or e.error_code > 8:
                j.fail(f"ERROR code {e.error_code} is not defined", [e.frame], mac, t.server_ip)
        first = replies[0] if replies else None
        if first is not None and first.op_name == "ERROR" and first.error_code is not None:
            codes, why = _right_refusals(t)
            if first.error_code <= 8 and first.error_code not in codes:
                name = ERROR_NAMES.get(first.error_code, "?")
                what = (f"{q.op_name} {q.filename!r}" if q.op_name in ("RRQ", "WRQ")
                        else f"a packet with opcode {q.opcode} sent to port 69")
                j.fail(f"{what} was refused with ERROR {first.error_code} "
                       f"({name}, {first.error_msg or ''!r}); {why}",
                       [q.frame, first.frame], mac, t.server_ip)
        if len(errors) > 1:
            j.fail(
                "ERROR packet sent more than once (errors are not retransmitted)",
                [e.frame for e in errors],
                mac,
                t.server_ip,
            )
        elif errors:
            j.checked()


# A resend within this long after a duplicate ACK looks like a reaction to it ...
_REACTION_S = 0.05
# ... unless it also sits on the server's own retransmission rhythm (within this share).
_TIMER_SLACK = 0.2


def _resend_period(t: TftpTransfer, events: list[TftpEvent]) -> float | None:
    """The server's retransmission timeout: the negotiated ``timeout`` option, else the
    median gap between consecutive sends of one block (None when it never resent twice)."""
    o = _oack(t)
    value = dict(o.options).get("timeout") if o else None
    if value and value.isdigit() and int(value) > 0:
        return float(value)
    last: dict[int, float] = {}
    gaps: list[float] = []
    for e in events:
        if e.op_name == "DATA" and e.block is not None and e.src_ip == t.server_ip:
            if e.block in last:
                gaps.append(e.time - last[e.block])
            last[e.block] = e.time
    if len(gaps) < 2:
        return None
    return sorted(gaps)[len(gaps) // 2]


@check("TFTP-7", unit="transfer")
def tftp7(an: Analysis, j: Judge) -> None:
    """No resend on duplicate ACK (Sorcerer's Apprentice); bounded retries.

    A timer-driven server under load also resends a block soon after a late duplicate
    ACK by coincidence. What gives the Apprentice away is a resend that follows the
    duplicate ACK at once *and* breaks the server's own retransmission rhythm.
    """
    for t in _transfers(an, j):
        events = sorted(t.events, key=lambda e: e.frame)
        period = _resend_period(t, events)
        acks_seen: dict[int, int] = {}
        sent: dict[int, int] = {}
        sent_at: dict[int, float] = {}
        bad: list[tuple[str, list[int]]] = []
        last_dup: TftpEvent | None = None
        for e in events:
            if e.op_name == "ACK" and e.src_ip == t.request.src_ip and e.block is not None:
                acks_seen[e.block] = acks_seen.get(e.block, 0) + 1
                last_dup = e if acks_seen[e.block] > 1 else None
            elif e.op_name == "DATA" and e.block is not None:
                sent[e.block] = sent.get(e.block, 0) + 1
                gap = e.time - sent_at.get(e.block, e.time)
                sent_at[e.block] = e.time
                on_timer = period is not None and abs(gap - period) <= _TIMER_SLACK * period
                if (
                    sent[e.block] > 1
                    and last_dup is not None
                    and last_dup.block == e.block - 1
                    and e.time - last_dup.time < _REACTION_S
                    and not on_timer
                ):
                    bad.append(
                        (
                            f"DATA {e.block} resent right after a duplicate ACK {last_dup.block}",
                            [last_dup.frame, e.frame],
                        )
                    )
                last_dup = None
        worst = max(sent.values(), default=0)
        if worst > 10:
            bad.append((f"a block was sent {worst} times: no retry cap", []))
        if bad:
            for msg, frames in bad[:3]:
                j.fail(msg, frames or [t.request.frame], an.mac_of(t.request.src_ip), t.server_ip)
        elif sent:
            j.checked()


@check("TFTP-8", unit="transfer")
def tftp8(an: Analysis, j: Judge) -> None:
    """Report transfers whose last block was not acknowledged (allowed)."""
    for t, data in _with_data(an, j):
        last = max(e.block or 0 for e in data)
        acked = any(e.op_name == "ACK" and e.block == last for e in t.from_client())
        j.checked(note=None if acked else f"{t.request.filename}: last block not ACKed")


@check("TFTP-9", unit="request")
def tftp9(an: Analysis, j: Judge) -> None:
    """Nothing served outside the boot root."""
    transfers = _transfers(an, j)
    j.not_applicable("no request for a path outside the boot root")
    for t in transfers:
        if not escapes_root(t.request.filename):
            continue
        served = [e for e in t.from_server() if e.op_name in ("DATA", "OACK")]
        j.expect(
            not served,
            f"served {t.request.filename!r}, a path outside the boot root",
            [t.request.frame, *(e.frame for e in served[:1])],
            an.mac_of(t.request.src_ip),
            t.server_ip,
        )
