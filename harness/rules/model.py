"""What the rule engine produces: rules, findings and the report over one capture."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Level(StrEnum):
    """Requirement level, as in RFC 2119; MAY rules report but never fail."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


class Verdict(StrEnum):
    """Outcome of one rule on one capture (or one violation of it)."""

    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "not-applicable"


@dataclass(frozen=True)
class Rule:
    """One conformance rule: id as in CONFORMANCE.md, level, statement and source."""

    id: str
    level: Level
    statement: str
    citation: str


@dataclass(frozen=True)
class Finding:
    """A verdict of one rule, with the frames that show it and a plain explanation.

    A rule yields one FAIL finding per violation, or one PASS finding (saying how
    much it checked) or one NOT_APPLICABLE finding (saying why).
    """

    rule_id: str
    level: Level
    verdict: Verdict
    message: str
    frames: tuple[int, ...] = ()
    client: str | None = None
    server: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form."""
        d = asdict(self)
        d["level"] = self.level.value
        d["verdict"] = self.verdict.value
        d["frames"] = list(self.frames)
        return d


@dataclass
class Report:
    """All findings for one capture, in rule order."""

    path: str
    frames: int
    findings: list[Finding] = field(default_factory=list)
    # how the capture's servers were classified (CONFORMANCE.md SITE preamble):
    # "proxies", "address_servers", "combined_servers" -> sorted addresses
    servers: dict[str, list[str]] = field(default_factory=dict)

    def failures(self, level: Level | None = None) -> list[Finding]:
        """FAIL findings, optionally of one level only."""
        return [
            f
            for f in self.findings
            if f.verdict is Verdict.FAIL and (level is None or f.level is level)
        ]

    def for_rule(self, rule_id: str) -> list[Finding]:
        """Findings of one rule."""
        return [f for f in self.findings if f.rule_id == rule_id]

    def failed_rules(self) -> set[str]:
        """Ids of rules with at least one FAIL."""
        return {f.rule_id for f in self.failures()}

    @property
    def ok(self) -> bool:
        """True when no MUST rule failed (SHOULD failures are warnings)."""
        return not self.failures(Level.MUST)

    def summary(self) -> dict[str, int]:
        """Counts per verdict, and MUST/SHOULD failures."""
        out = {v.value: 0 for v in Verdict}
        for f in self.findings:
            out[f.verdict.value] += 1
        out["must_failures"] = len(self.failures(Level.MUST))
        out["should_failures"] = len(self.failures(Level.SHOULD))
        return out
