"""One bounded DHCP exchange: send a few DISCOVERs, collect every reply for a while.

This is the only place site-check's DHCP probes put frames on the wire, so the limits
the user is promised live here: at most ``max_tries`` sends per probe, at least
``gap`` seconds between any two sends, nothing after the listening window closes.
Unreadable replies are counted (with a few examples), never raised.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.sitecheck.dhcp_link import FrameLink
from harness.sitecheck.dhcp_wire import BOOTREPLY, DhcpMessage, MalformedReply, parse_frame

MIN_GAP = 0.2          # seconds between two probes we send (rate limit)
MAX_TRIES = 2          # sends per probe: the first and one retransmission
MAX_OTHER = 2000       # frames of other conversations kept for the passive view
MAX_EXAMPLES = 3       # malformed replies quoted in evidence


@dataclass
class Probe:
    """One DISCOVER we send (up to MAX_TRIES times, same xid, as a ROM retransmits)."""

    mac: str
    xid: int
    frame: bytes
    sent_at: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Seen:
    """A DHCP message and when (monotonic seconds) it arrived."""

    message: DhcpMessage
    at: float


@dataclass
class Exchange:
    """What one exchange saw: replies to our probes, everything else, and what was unreadable."""

    probes: list[Probe]
    replies: dict[int, list[Seen]] = field(default_factory=dict)   # by probe xid
    other: list[Seen] = field(default_factory=list)
    malformed: int = 0
    malformed_examples: list[str] = field(default_factory=list)

    def replies_to(self, probe: Probe) -> list[Seen]:
        """Replies addressed to this probe (its xid and its MAC in chaddr)."""
        return self.replies.get(probe.xid, [])

    def malformed_evidence(self) -> list[str]:
        """'N malformed replies ignored' plus examples, or nothing."""
        if not self.malformed:
            return []
        noun = "reply" if self.malformed == 1 else "replies"
        return [f"{self.malformed} malformed {noun} ignored"] + [
            f"  e.g. {text}" for text in self.malformed_examples]


Answered = Callable[[Probe, list[Seen]], bool]


def run_exchange(
    link: FrameLink,
    probes: list[Probe],
    listen_seconds: float,
    *,
    answered: Answered | None = None,
    gap: float = MIN_GAP,
    max_tries: int = MAX_TRIES,
    clock: Callable[[], float] = time.monotonic,
) -> Exchange:
    """Send every probe, retransmit once (halfway through the window) those that
    ``answered`` says are not answered yet, and collect frames until each probe had
    ``listen_seconds`` since its first send. With no probes this only listens."""
    gap = max(gap, MIN_GAP)
    out = Exchange(probes=probes)
    by_xid = {p.xid: p for p in probes}
    start = clock()
    # first tries back to back at the rate limit, retries from half the window on
    schedule: list[tuple[float, Probe]] = [(start + i * gap, p) for i, p in enumerate(probes)]
    retry_from = start + listen_seconds / 2
    deadline = start + listen_seconds + gap * max(len(probes) - 1, 0)
    last_send = float("-inf")
    retry_planned = max_tries < 2 or not probes
    while True:
        now = clock()
        while schedule and schedule[0][0] <= now and now - last_send >= gap:
            _, probe = schedule.pop(0)
            link.send(probe.frame)
            probe.sent_at.append(now)
            last_send = now
            now = clock()
        if not retry_planned and now >= retry_from and not schedule:
            retry_planned = True
            again = [p for p in probes if len(p.sent_at) < max_tries
                     and not (answered or _any_reply)(p, out.replies_to(p))]
            schedule += [(now + i * gap, p) for i, p in enumerate(again)]
            continue
        if now >= deadline:
            return out
        wake = min([deadline] + ([max(schedule[0][0], last_send + gap)] if schedule else [])
                   + ([retry_from] if not retry_planned else []))
        frame = link.receive(max(wake - now, 0.0))
        if frame is None:
            continue
        _take(out, by_xid, frame, clock())


def _any_reply(probe: Probe, replies: list[Seen]) -> bool:
    return bool(replies)


def _take(out: Exchange, by_xid: dict[int, Probe], frame: bytes, at: float) -> None:
    try:
        msg = parse_frame(frame)
    except MalformedReply as exc:
        out.malformed += 1
        if len(out.malformed_examples) < MAX_EXAMPLES:
            out.malformed_examples.append(str(exc))
        return
    if msg is None:
        return
    probe = by_xid.get(msg.xid)
    if probe is not None and msg.op == BOOTREPLY and msg.chaddr == probe.mac:
        out.replies.setdefault(probe.xid, []).append(Seen(msg, at))
    elif len(out.other) < MAX_OTHER:
        out.other.append(Seen(msg, at))
