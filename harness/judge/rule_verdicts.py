"""A scenario's rule expectations, read off the rule engine's findings.

The engine gives each rule, per captured segment, FAIL findings (one per violation) or
one PASS (it checked something and all was right) or one NOT_APPLICABLE (nothing in
that capture to check). A scenario reads them three ways:

- ``MUST``: no MUST finding FAILs (rules listed as expected violations excepted), and
  at least one capture was judged at all;
- a named rule id: it PASSed on some segment and FAILed on none — a rule that was
  never applied proves nothing, so it fails the expectation;
- ``violations``: each listed rule FAILed somewhere; the report names those frames;
- ``diagnoses``: a rule FAILed with a finding saying the given text (the failure and
  why, e.g. SITE-3's "the relay does not forward to the Boot Proxy").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from harness.judge.result import ExpectationResult
from harness.rules.model import Finding, Level, Verdict
from harness.scenario.model import Expectations

MAX_SHOWN = 5
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
Names = Callable[[list[str]], list[str]]
Located = tuple[str, Finding]  # (segment, finding)


def judge_rules(expect: Expectations, findings: dict[str, list[Finding]],
                names: Names) -> list[ExpectationResult]:
    """Every rule expectation (``rules`` then ``violations``), judged on ``findings``."""
    located = [(seg, f) for seg, fs in findings.items() for f in fs]
    out = [_must(located, set(expect.violations)) if rule == "MUST"
           else _holds(rule, located) for rule in expect.rules]
    out += [_violated(rule, located, names) for rule in expect.violations]
    out += [_diagnosed(d.rule, d.says, located, names) for d in expect.diagnoses]
    return out


def _diagnosed(rule: str, says: str, located: list[Located],
               names: Names) -> ExpectationResult:
    """``rule`` FAILed somewhere with a finding that says ``says``."""
    label = f"{rule} fails saying {says!r}"
    fails = [(seg, f) for seg, f in located if f.rule_id == rule and f.verdict == Verdict.FAIL]
    # the text may name a declared party ("rogue (10.0.0.9)"), as the report shows it
    hits = [(seg, f) for seg, f in fails
            if says in f.message or says in named_addresses(f.message, names)]
    shown = hits or fails
    detail = "; ".join(f"{seg}: {named_addresses(f.message, names)}"
                       for seg, f in shown[:MAX_SHOWN])
    if hits:
        return ExpectationResult("rule", rule, label, "pass", detail)
    if fails:
        return ExpectationResult("rule", rule, label, "fail",
                                 f"{rule} failed, but no finding says it: {detail}")
    return ExpectationResult("rule", rule, label, "fail", f"{rule} did not fail in this run")


def _must(located: list[Located], expected: set[str]) -> ExpectationResult:
    label = "every MUST rule holds" + (
        f" (besides the expected violations {', '.join(sorted(expected))})" if expected else "")
    selected = [f for _, f in located if f.level == Level.MUST]
    if not selected:
        return ExpectationResult("rule", "MUST", label, "fail",
                                 "no capture was judged: nothing shows it holds")
    fails = [f for f in selected if f.verdict == Verdict.FAIL and f.rule_id not in expected]
    if fails:
        return ExpectationResult("rule", "MUST", label, "fail", _listed(fails))
    rules = {f.rule_id for f in selected if f.verdict == Verdict.PASS}
    return ExpectationResult("rule", "MUST", label, "pass",
                             f"{len(selected)} finding(s), none failing; "
                             f"{len(rules)} MUST rule(s) passed somewhere")


def _holds(rule: str, located: list[Located]) -> ExpectationResult:
    label = f"{rule} holds (applied, never failed)"
    mine = [(seg, f) for seg, f in located if f.rule_id == rule]
    fails = [f for _, f in mine if f.verdict == Verdict.FAIL]
    if fails:
        return ExpectationResult("rule", rule, label, "fail", _listed(fails))
    passed = sorted({seg for seg, f in mine if f.verdict == Verdict.PASS})
    if not passed:
        return ExpectationResult("rule", rule, label, "fail", _never_applied(rule, mine))
    detail = "; ".join(f"{seg}: {f.message}" for seg, f in mine if f.verdict == Verdict.PASS)
    return ExpectationResult("rule", rule, label, "pass", detail)


def _violated(rule: str, located: list[Located], names: Names) -> ExpectationResult:
    label = f"{rule} fails (an expected violation)"
    mine = [(seg, f) for seg, f in located if f.rule_id == rule]
    fails = [(seg, f) for seg, f in mine if f.verdict == Verdict.FAIL]
    if fails:
        shown = "; ".join(
            f"{seg} frames {', '.join(map(str, f.frames)) or '?'}: "
            f"{named_addresses(f.message, names)}" for seg, f in fails[:MAX_SHOWN])
        more = f"; and {len(fails) - MAX_SHOWN} more" if len(fails) > MAX_SHOWN else ""
        return ExpectationResult("rule", rule, label, "pass", shown + more)
    if any(f.verdict == Verdict.PASS for _, f in mine):
        detail = f"{rule} did not fail: " + "; ".join(
            f"{seg}: {f.message}" for seg, f in mine if f.verdict == Verdict.PASS)
        return ExpectationResult("rule", rule, label, "fail", detail)
    return ExpectationResult("rule", rule, label, "fail", _never_applied(rule, mine))


def _never_applied(rule: str, mine: list[Located]) -> str:
    why = "; ".join(dict.fromkeys(f"{seg}: {f.message}" for seg, f in mine))
    return f"{rule} never applied in this run" + (f" ({why})" if why else
                                                  " (no capture was judged)")


def _listed(fails: list[Finding]) -> str:
    detail = "; ".join(f"{f.rule_id}: {f.message}" for f in fails[:MAX_SHOWN])
    if len(fails) > MAX_SHOWN:
        detail += f"; and {len(fails) - MAX_SHOWN} more"
    return detail


def named_addresses(message: str, names: Names) -> str:
    """``message`` with each address of a declared proxy written ``name (address)``,
    so a report names the parties, not only their addresses."""
    def name(match: re.Match[str]) -> str:
        ip = match.group(0)
        found = names([ip])
        return f"{found[0]} ({ip})" if found and found[0] != ip else ip

    return IPV4.sub(name, message)
