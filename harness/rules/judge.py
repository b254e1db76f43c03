"""How a rule reports: a Judge collects violations and turns them into findings.

Each rule is a function ``(Analysis, Judge) -> None`` registered under its id.
It calls ``judge.fail(...)`` per violation and ``judge.checked(...)`` for each
thing it looked at; the engine then emits FAILs, or one PASS saying how much
was checked, or one NOT_APPLICABLE saying why nothing was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from harness.capture.events import DhcpEvent
from harness.rules.analysis import Analysis
from harness.rules.catalog import RULES
from harness.rules.model import Finding, Level, Verdict


def between(request: DhcpEvent, reply: DhcpEvent) -> tuple[list[int], str, str]:
    """Where a finding about ``reply`` answering ``request`` points: both frames, the
    client's MAC and the replying server (``j.expect(ok, msg, *between(q, r))``)."""
    return [request.frame, reply.frame], request.chaddr, reply.src_ip


@dataclass
class Judge:
    """Collects the outcome of one rule."""

    rule_id: str
    failures: list[Finding] = field(default_factory=list)
    count: int = 0
    notes: list[str] = field(default_factory=list)
    na_reason: str = "nothing in the capture this rule applies to"

    def fail(
        self,
        message: str,
        frames: Iterable[int] = (),
        client: str | None = None,
        server: str | None = None,
    ) -> None:
        """Record one violation."""
        self.count += 1
        level = RULES[self.rule_id].level
        # A MAY rule cannot be violated; what it saw is reported as a pass note.
        if level is Level.MAY:
            self.notes.append(message)
            return
        self.failures.append(
            Finding(
                self.rule_id,
                level,
                Verdict.FAIL,
                message,
                tuple(sorted(set(frames))),
                client,
                server,
            )
        )

    def expect(
        self,
        holds: bool,
        problem: str,
        frames: Iterable[int] = (),
        client: str | None = None,
        server: str | None = None,
    ) -> None:
        """One item examined: a violation saying ``problem`` unless it ``holds``.

        Most checks are "for each exchange, fail if X else count it"; this is that
        branch once, so every rule counts what it examined the same way.
        """
        if holds:
            self.checked()
        else:
            self.fail(problem, frames, client, server)

    def expect_none(
        self,
        problems: Sequence[str],
        what: str = "",
        frames: Iterable[int] = (),
        client: str | None = None,
        server: str | None = None,
    ) -> None:
        """One item examined against several requirements at once: one violation, ``what``
        followed by every problem found, or counted clean when ``problems`` is empty (so a
        packet with three faults is one finding that names all three)."""
        self.expect(not problems, what + "; ".join(problems), frames, client, server)

    def checked(self, n: int = 1, note: str | None = None) -> None:
        """Count ``n`` items examined without a violation; optionally keep a note."""
        self.count += n
        if note:
            self.notes.append(note)

    def not_applicable(self, reason: str) -> None:
        """Say why the rule could not be applied (used when nothing is checked)."""
        self.na_reason = reason

    def findings(self, unit: str = "item") -> list[Finding]:
        """FAILs, else one PASS or one NOT_APPLICABLE finding."""
        level = RULES[self.rule_id].level
        if self.failures:
            return self.failures
        if self.count:
            msg = f"{self.count} {unit}{'s' if self.count != 1 else ''} checked"
            if self.notes:
                msg += "; " + "; ".join(dict.fromkeys(self.notes))
            return [Finding(self.rule_id, level, Verdict.PASS, msg)]
        return [Finding(self.rule_id, level, Verdict.NOT_APPLICABLE, self.na_reason)]


Check = Callable[[Analysis, Judge], None]
CHECKS: dict[str, tuple[Check, str]] = {}


def check(rule_id: str, unit: str = "packet") -> Callable[[Check], Check]:
    """Register ``fn`` as the implementation of ``rule_id`` (which must be catalogued)."""
    if rule_id not in RULES:
        raise KeyError(f"{rule_id} is not in the rule catalogue")

    def register(fn: Check) -> Check:
        CHECKS[rule_id] = (fn, unit)
        return fn

    return register
