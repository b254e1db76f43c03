"""The one-file HTML summary of a run: verdict, expectations, rules, machines, evidence.

Self-contained on purpose: CSS and SVG are inline, there is no script and no
reference to any network address, so the file opens the same from a CI
artifact, a results bundle or an air-gapped laptop. Links to pcaps, logs and
consoles are relative to where the HTML is written.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import quote

from harness.capture.decode import decode_pcap
from harness.capture.errors import CaptureError
from harness.capture.events import Capture
from harness.judge.result import MachineResult, RunResult
from harness.reports.errors import ReportError
from harness.reports.ladder import CaptureIndex, index_captures, machine_ladder, render_svg
from harness.reports.wan_section import wan_section
from harness.rules.catalog import RULES
from harness.rules.model import Finding, Level, Verdict

Linker = Callable[[Path], str]
MAX_LADDERS = 60  # Ready machines drawn inline; a 200-machine storm stays a light page


def load_captures(result: RunResult, base: Path | None = None) -> dict[str, Capture]:
    """Decode the run's pcaps that can be found (as given, or under ``base``).

    A missing or unreadable pcap is left out: the report then falls back to the
    machines' own timelines rather than failing.
    """
    out: dict[str, Capture] = {}
    for seg, path in result.pcaps.items():
        for candidate in (Path(path), (base / path) if base else None):
            if candidate is None or not candidate.is_file():
                continue
            with contextlib.suppress(CaptureError):
                out[seg] = decode_pcap(str(candidate), require_dhcp=False)
            break
    return out


def relative_linker(out_dir: Path, base: Path | None = None) -> Linker:
    """Links relative to the HTML file's directory (paths resolved from cwd or ``base``)."""

    def link(path: Path) -> str:
        p = Path(path)
        if not p.is_absolute() and base is not None and not p.exists():
            p = base / p
        rel = os.path.relpath(p.resolve(), out_dir.resolve())
        return quote(rel.replace(os.sep, "/"))

    return link


def html_text(s: object) -> str:
    """Escape text; write '://' as an entity so the file holds no literal URL scheme."""
    return escape(str(s)).replace("://", ":&#47;&#47;")


_t = html_text  # short form used throughout the templates below


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _badge(verdict: str) -> str:
    label = {"not-applicable": "n/a"}.get(verdict, verdict)
    return f'<span class="badge b-{_t(verdict)}">{_t(label.upper())}</span>'


@dataclass
class RuleRow:
    """All findings of one rule over the run's segments, for the rules table."""

    rule_id: str
    level: str
    statement: str
    counts: dict[str, int] = field(default_factory=lambda: {"pass": 0, "fail": 0, "n/a": 0})
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """fail if any finding failed, pass if any passed, else not-applicable."""
        if self.counts["fail"]:
            return "fail"
        return "pass" if self.counts["pass"] else "not-applicable"


def rule_rows(findings: Mapping[str, Sequence[Finding]]) -> list[RuleRow]:
    """Group findings by rule; failing MUST rules first, then SHOULD, then the rest."""
    rows: dict[str, RuleRow] = {}
    multi = len(findings) > 1
    for seg, fs in findings.items():
        for f in fs:
            rule = RULES.get(f.rule_id)
            row = rows.setdefault(
                f.rule_id,
                RuleRow(f.rule_id, f.level.value, rule.statement if rule else ""),
            )
            where = f"[{seg}] " if multi else ""
            frames = f" (frames {', '.join(map(str, f.frames[:6]))})" if f.frames else ""
            if f.verdict is Verdict.FAIL:
                row.counts["fail"] += 1
                row.failures.append(f"{where}{f.message}{frames}")
            elif f.verdict is Verdict.PASS:
                row.counts["pass"] += 1
                row.notes.append(f"{where}{f.message}")
            else:
                row.counts["n/a"] += 1
                row.notes.append(f"{where}{f.message}")

    def order(r: RuleRow) -> tuple[int, str]:
        rank = {"fail": 0, "pass": 2, "not-applicable": 3}[r.status]
        if r.status == "fail" and r.level != Level.MUST.value:
            rank = 1
        return rank, _natural(r.rule_id)

    return sorted(rows.values(), key=order)


def _natural(rule_id: str) -> str:
    return re.sub(r"\d+", lambda m: m.group(0).zfill(4), rule_id)


CSS = """
:root{--ok:#1a7f37;--bad:#c62828;--warn:#b26a00;--mut:#5f6b7a;--line:#d8dee6;--bg:#f4f6f9}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
color:#1d2733;background:var(--bg)}
header{padding:22px 32px 18px;background:#16202c;color:#fff}
header h1{margin:0 0 4px;font-size:24px}
header .meta{color:#b8c4d2;font-size:13px}
header .meta b{color:#fff;font-weight:600}
main{padding:20px 32px 40px;max-width:1500px}
.banner{display:flex;align-items:center;gap:18px;padding:16px 22px;border-radius:10px;
margin:0 0 18px;color:#fff;font-size:18px;font-weight:600}
.banner .big{font-size:30px;letter-spacing:1px}
.banner.pass{background:linear-gradient(90deg,#1a7f37,#2e9d50)}
.banner.fail{background:linear-gradient(90deg,#b3261e,#d84a3a)}
.banner .sub{font-weight:400;font-size:14px;opacity:.95}
.desc{white-space:pre-wrap;color:#33414f;margin:0 0 18px;max-width:1100px}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 16px;
min-width:150px}
.tile .n{font-size:22px;font-weight:700}
.tile .l{color:var(--mut);font-size:12px;text-transform:uppercase;letter-spacing:.5px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:14px 20px 18px;
margin-bottom:20px}
h2{font-size:18px;margin:4px 0 12px}
h3{font-size:16px;margin:0}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;text-transform:uppercase;letter-spacing:.5px;color:var(--mut);background:#fafbfc}
tr.r-fail td{background:#fff5f4}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;font-weight:700;
letter-spacing:.5px;color:#fff;white-space:nowrap}
.b-pass{background:var(--ok)}.b-fail{background:var(--bad)}.b-skip,.b-not-applicable{background:#8a96a3}
.b-should{background:var(--warn)}
.lvl{font-weight:700;font-size:12px}.lvl-MUST{color:var(--bad)}.lvl-SHOULD{color:var(--warn)}
.lvl-MAY{color:var(--mut)}
.mut{color:var(--mut)}
ul.msgs{margin:2px 0 0;padding-left:18px}ul.msgs li{margin:1px 0}
.fails li{color:#8e1b14}
.phases .bar{position:relative;height:22px;background:#eef1f5;border-radius:4px;margin:3px 0}
.phases .seg{position:absolute;top:0;bottom:0;background:#3d6fa8;border-radius:4px;min-width:2px}
.phases td{border:none;padding:2px 8px}
.machine{border:1px solid var(--line);border-radius:10px;margin:14px 0;overflow:hidden}
.machine .head{display:flex;flex-wrap:wrap;gap:8px 22px;align-items:baseline;padding:10px 16px;
background:#fafbfc;border-bottom:1px solid var(--line)}
.machine .head .kv{color:var(--mut);font-size:13px}.machine .head .kv b{color:#1d2733}
.state{font-weight:700;padding:1px 10px;border-radius:10px;font-size:12px;
color:#fff;background:#8a96a3}
.state.Ready{background:var(--ok)}.state.Failed,.state.Error{background:var(--bad)}
.state.Booting,.state.Registered{background:#3d6fa8}
.machine .body{padding:10px 16px}
.ladder-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:6px;margin-top:8px}
.links a{margin-right:14px}
a{color:#1f5fa8}
.error{background:#fff5f4;border:1px solid #f3c3be;color:#8e1b14;border-radius:8px;
padding:10px 14px;margin-bottom:18px;white-space:pre-wrap;
font-family:ui-monospace,"DejaVu Sans Mono",monospace}
footer{color:var(--mut);font-size:12px;padding:0 32px 30px}
td.rid{white-space:nowrap}
details{margin-top:10px}summary{cursor:pointer;color:#1f5fa8;font-weight:600}
.allok{color:var(--ok);font-weight:600}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px}
"""


def _banner(result: RunResult, rows: list[RuleRow]) -> str:
    exps = result.expectations
    failed = [e for e in exps if e.verdict == "fail"]
    must_fail = sum(1 for r in rows if r.status == "fail" and r.level == "MUST")
    if result.verdict == "pass":
        sub = f"all {len(exps)} expectations hold"
    else:
        sub = f"{len(failed)} of {len(exps)} expectations failed"
        if result.error:
            sub += " \u00b7 the run reported an error"
    if must_fail:
        sub += f" \u00b7 {must_fail} MUST rule(s) violated"
    word = "PASS" if result.verdict == "pass" else "FAIL"
    return (
        f'<div class="banner {result.verdict}" id="verdict"><span class="big">{word}</span>'
        f'<span>{_t(result.scenario_name)}<br><span class="sub">{_t(sub)}</span></span></div>'
    )


def _tiles(result: RunResult, rows: list[RuleRow]) -> str:
    ready = sum(1 for m in result.machines if m.state == "Ready")
    times = [m.ready_seconds for m in result.machines if m.ready_seconds is not None]
    tiles = [
        (f"{ready}/{len(result.machines)}", "machines Ready"),
        (
            f"{sum(e.verdict == 'pass' for e in result.expectations)}/{len(result.expectations)}",
            "expectations hold",
        ),
        (str(sum(r.status == "fail" and r.level == "MUST" for r in rows)), "MUST rules failed"),
        (str(sum(r.status == "fail" and r.level != "MUST" for r in rows)), "SHOULD warnings"),
        (f"{max(times):.1f} s" if times else "\u2014", "slowest Ready"),
        (f"{result.duration:.1f} s", "run time"),
    ]
    body = "".join(
        f'<div class="tile"><div class="n">{_t(n)}</div><div class="l">{_t(lbl)}</div></div>'
        for n, lbl in tiles
    )
    return f'<div class="tiles">{body}</div>'


def _phases(result: RunResult) -> str:
    if not result.phases:
        return ""
    t0 = min(s for _, s, _ in result.phases)
    total = max(max(e for _, _, e in result.phases) - t0, 1e-6)
    rows = []
    for name, start, end in result.phases:
        left = 100 * (start - t0) / total
        width = 100 * (end - start) / total
        rows.append(
            f"<tr><td>{_t(name)}</td><td style=\"width:70%\"><div class=\"bar\">"
            f'<div class="seg" style="left:{left:.2f}%;width:{width:.2f}%"></div></div></td>'
            f'<td class="num">{end - start:.2f} s</td></tr>'
        )
    return (
        '<section id="phases"><h2>Phases</h2><table class="phases">'
        + "".join(rows)
        + "</table></section>"
    )


def _expectations(result: RunResult) -> str:
    if not result.expectations:
        return '<section id="expectations"><h2>Expectations</h2><p class="mut">none</p></section>'
    rows = "".join(
        f'<tr class="r-{_t(e.verdict)}"><td>{_badge(e.verdict)}</td><td>{_t(e.kind)}</td>'
        f"<td><b>{_t(e.subject)}</b></td><td>{_t(e.description)}</td>"
        f'<td class="mut">{_t(e.detail)}</td></tr>'
        for e in sorted(result.expectations, key=lambda e: e.verdict != "fail")
    )
    return (
        '<section id="expectations"><h2>Expectations</h2><table><tr><th>verdict</th>'
        "<th>kind</th><th>subject</th><th>expectation</th><th>detail</th></tr>"
        f"{rows}</table></section>"
    )


def _rule_tr(r: RuleRow) -> str:
    msgs = ""
    if r.failures:
        shown = "".join(f"<li>{_t(m)}</li>" for m in r.failures[:6])
        more = f"<li>\u2026 {len(r.failures) - 6} more</li>" if len(r.failures) > 6 else ""
        msgs = f'<ul class="msgs fails">{shown}{more}</ul>'
    elif r.notes:
        msgs = f'<span class="mut">{_t("; ".join(dict.fromkeys(r.notes)))}</span>'
    badge = _badge(r.status)
    if r.status == "fail" and r.level != "MUST":
        badge = '<span class="badge b-should">WARN</span>'
    return (
        f'<tr class="r-{_t(r.status)}" id="rule-{_t(r.rule_id)}"><td>{badge}</td>'
        f'<td class="rid"><b>{_t(r.rule_id)}</b></td>'
        f'<td><span class="lvl lvl-{_t(r.level)}">{_t(r.level)}</span></td>'
        f'<td class="num">{r.counts["pass"]}</td><td class="num">{r.counts["fail"]}</td>'
        f'<td class="num">{r.counts["n/a"]}</td>'
        f'<td>{_t(r.statement)}{"<br>" if msgs else ""}{msgs}</td></tr>'
    )


_RULE_HEAD = (
    '<tr><th>verdict</th><th>rule</th><th>level</th><th class="num">pass</th>'
    '<th class="num">fail</th><th class="num">n/a</th><th>statement and findings</th></tr>'
)


def _rules(rows: list[RuleRow]) -> str:
    """Failing rules in full view; passing and not-applicable ones folded below them."""
    if not rows:
        body = '<p class="mut">No capture was judged (no DHCP traffic, or no pcap).</p>'
        return f'<section id="rules"><h2>Conformance rules</h2>{body}</section>'
    failing = [r for r in rows if r.status == "fail"]
    rest = [r for r in rows if r.status != "fail"]
    passed = sum(r.status == "pass" for r in rest)
    head = (
        f"<table>{_RULE_HEAD}{''.join(_rule_tr(r) for r in failing)}</table>"
        if failing
        else '<p class="allok">\u2713 every rule that applied holds</p>'
    )
    fold = (
        f"<details><summary>{passed} rule(s) pass, {len(rest) - passed} not applicable"
        f"</summary><table>{_RULE_HEAD}{''.join(_rule_tr(r) for r in rest)}</table></details>"
        if rest
        else ""
    )
    return (
        f'<section id="rules"><h2>Conformance rules <span class="mut">'
        f"({len(failing)} failing of {len(rows)})</span></h2>{head}{fold}</section>"
    )


def _link(link: Linker, path: Path, text: str) -> str:
    return f'<a href="{escape(link(path))}">{_t(text)}</a>'


def _machine(
    result: RunResult,
    m: MachineResult,
    captures: Mapping[str, CaptureIndex],
    link: Linker,
    index: int = 0,
    draw: bool = True,
) -> str:
    ladder = machine_ladder(result, m, captures) if draw else None
    svg = '<p class="mut">ladder not drawn: too many machines (see the bundle)</p>'
    if ladder is not None:
        # inline SVG in HTML needs no namespace; dropping it keeps the file free of URLs
        svg = render_svg(ladder, id_prefix=f"m{index}-")
        svg = svg.replace(' xmlns="http://www.w3.org/2000/svg"', "", 1)
        svg = svg.replace("://", ":&#47;&#47;")
    ready = f"{m.ready_seconds:.1f} s" if m.ready_seconds is not None else "never"
    state_cls = re.sub(r"[^A-Za-z0-9_-]", "", m.state)
    kv = [
        ("MAC", m.mac),
        ("firmware", m.firmware),
        ("segment", m.segment),
        ("cluster", m.cluster or "\u2014"),
        ("driver", m.driver),
        ("answered by", ", ".join(m.answered_by) or "nobody"),
        ("Ready after", ready),
    ]
    head = "".join(f'<span class="kv">{_t(k)} <b>{_t(v)}</b></span>' for k, v in kv)
    links = []
    if m.segment in result.pcaps:
        links.append(_link(link, result.pcaps[m.segment], f"{m.segment}.pcap"))
    if m.console is not None:
        links.append(_link(link, m.console, "console log"))
    reasons = (
        f'<div class="mut">reasons: {_t("; ".join(m.reasons))}</div>' if m.reasons else ""
    )
    if ladder is not None and ladder.title.endswith("machine timeline"):
        links.append('<span class="mut">ladder drawn from the machine\'s own timeline '
                     "(its traffic is not in a capture)</span>")
    return (
        f'<div class="machine" id="machine-{_t(m.name)}"><div class="head"><h3>{_t(m.name)}</h3>'
        f'<span class="state {_t(state_cls)}">{_t(m.state)}</span>{head}</div>'
        f'<div class="body">{reasons}<div class="links">{"".join(links)}</div>'
        f'<div class="ladder-wrap">{svg}</div></div></div>'
    )


def _evidence(result: RunResult, link: Linker) -> str:
    items = [
        f"<li>pcap <b>{_t(seg)}</b>: {_link(link, p, Path(p).name)}</li>"
        for seg, p in result.pcaps.items()
    ]
    items += [f"<li>log: {_link(link, p, Path(p).name)}</li>" for p in result.logs]
    items += [
        f"<li>console <b>{_t(m.name)}</b>: {_link(link, m.console, Path(m.console).name)}</li>"
        for m in result.machines
        if m.console is not None
    ]
    body = f"<ul>{''.join(items)}</ul>" if items else '<p class="mut">none recorded</p>'
    versions = "".join(
        f"<tr><td>{_t(k)}</td><td><code>{_t(v)}</code></td></tr>"
        for k, v in sorted(result.versions.items())
    )
    return (
        f'<section id="evidence"><h2>Evidence</h2>{body}</section>'
        f'<section id="versions"><h2>Versions</h2><table>{versions}</table></section>'
    )


def render_html(
    result: RunResult,
    *,
    captures: Mapping[str, Capture | CaptureIndex] | None = None,
    link: Linker | None = None,
) -> str:
    """The summary page as one string. ``captures`` feed the ladders (else the
    machines' timelines do); ``link`` turns evidence paths into hrefs."""
    link = link or relative_linker(Path.cwd())
    indexes = index_captures(captures or {})
    findings = result.findings
    rows = rule_rows(findings)
    desc = str(result.scenario.get("description") or "").strip()
    meta = (
        f"tier <b>{_t(result.tier)}</b> \u00b7 lab <b>{_t(result.lab_id)}</b> \u00b7 "
        f"started <b>{_t(_when(result.started))}</b> \u00b7 "
        f"took <b>{result.duration:.1f} s</b>"
    )
    if result.scenario_file:
        meta += f" \u00b7 file <b>{_t(result.scenario_file)}</b>"
    err = f'<div class="error">{_t(result.error)}</div>' if result.error else ""
    # machines that did not reach Ready come first: they are what the reader looks for
    shown = sorted(result.machines, key=lambda m: m.state == "Ready")
    # every machine that is not Ready gets a ladder; Ready ones while the page stays light
    not_ready = sum(m.state != "Ready" for m in shown)
    last_drawn = max(MAX_LADDERS, not_ready)
    parts_m = [
        _machine(result, m, indexes, link, i, draw=i < last_drawn) for i, m in enumerate(shown)
    ]
    machines = "".join(parts_m)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>flexlab \u00b7 {_t(result.scenario_name)} \u00b7 "
        f"{result.verdict.upper()}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<header><h1>Scenario {_t(result.scenario_name)}</h1>"
        f'<div class="meta">{meta}</div></header><main>',
        _banner(result, rows),
        err,
        f'<p class="desc">{_t(desc)}</p>' if desc else "",
        _tiles(result, rows),
        _expectations(result),
        _rules(rows),
        wan_section(result.observed.site.wan if result.observed and result.observed.site
                    else None, _t),
        f'<section id="machines"><h2>Machines</h2>'
        f'{machines or "<p class=mut>none</p>"}</section>',
        _phases(result),
        _evidence(result, link),
        "</main>",
        f"<footer>flexlab {_t(result.versions.get('flexlab', ''))} \u00b7 generated "
        f"{_t(_when(dt.datetime.now(dt.UTC).timestamp()))} from run.json of lab "
        f"{_t(result.lab_id)}</footer>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)


def write_html(
    result: RunResult,
    path: Path,
    *,
    captures: Mapping[str, Capture | CaptureIndex] | None = None,
    base: Path | None = None,
) -> Path:
    """Write the summary to ``path``; pcaps are decoded for the ladders unless given.

    ``base`` is where relative evidence paths of the run are found when they do
    not resolve from the current directory (e.g. the project root of the run).
    """
    path = Path(path)
    if captures is None:
        captures = load_captures(result, base)
    text = render_html(result, captures=captures, link=relative_linker(path.parent, base))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"cannot write the HTML summary to {path}: {exc.strerror}") from exc
    return path
