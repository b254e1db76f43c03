"""Show a site-check report: a one-screen verdict for the terminal and one HTML file.

The terminal table has one line per check, grouped by the guide's requirements, so an
engineer standing in a server room sees at a glance what to fix. The HTML file adds the
evidence, the hints and a picture of who answered on the LAN (the responder map).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from harness.reports.html import CSS
from harness.reports.html import html_text as _t
from harness.sitecheck.model import REQUIREMENTS, CheckResult, CheckVerdict, worst
from harness.sitecheck.runner import SiteReport

SHORT_LABELS = {"dhcp": "1 site DHCP", "proxydhcp": "2 ProxyDHCP reach",
                "responders": "3 rogue/conflict", "dns": "4 DNS", "time": "5 time",
                "outbound": "6 outbound", "l2": "7 layer 2"}
_MARK = {CheckVerdict.PASS: "PASS", CheckVerdict.WARN: "WARN", CheckVerdict.FAIL: "FAIL",
         CheckVerdict.SKIP: "skip",
         CheckVerdict.INCOMPLETE: "NOT RUN"}
_COLOUR = {CheckVerdict.PASS: "green", CheckVerdict.WARN: "yellow", CheckVerdict.FAIL: "red",
           CheckVerdict.SKIP: "bright_black", CheckVerdict.INCOMPLETE: "magenta"}


def counts_line(report: SiteReport) -> str:
    """"3 pass · 1 warn · 0 fail · 1 not run · 2 skipped" (not run only when there is one)."""
    c = report.counts()
    not_run = f" · {c['incomplete']} not run" if c["incomplete"] else ""
    return (f"{c['pass']} pass · {c['warn']} warn · {c['fail']} fail{not_run} · "
            f"{c['skip']} skipped")


def overall_line(report: SiteReport) -> str:
    """The one-line verdict: SITE PASS/WARN/FAIL, or SITE INCOMPLETE naming what did not
    run (a site with an unchecked requirement is not known to pass)."""
    overall = report.overall
    if overall is CheckVerdict.INCOMPLETE:
        names = ", ".join(r.name for r in report.not_run())
        return f"SITE INCOMPLETE (could not run: {names})"
    return f"SITE {overall.value.upper()}"


def render_screen(report: SiteReport, html_path: Path | None = None, width: int = 100,
                  colour: bool = True) -> str:
    """The one-screen verdict as text, with ANSI colour when ``colour`` (a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", expand=False, show_lines=False,
                  pad_edge=False)
    table.add_column("requirement", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("finding", overflow="fold")
    for key, results in report.by_requirement().items():
        label = SHORT_LABELS[key]
        if not results:
            table.add_row(label, "[bright_black]—[/]", "", "[bright_black]not checked[/]")
            continue
        for i, r in enumerate(results):
            tint = _COLOUR[r.verdict]
            finding = escape_markup(r.summary)
            if r.hint and r.verdict in (CheckVerdict.FAIL, CheckVerdict.WARN,
                                        CheckVerdict.INCOMPLETE):
                finding += f"\n[bright_black]→ {escape_markup(r.hint)}[/]"
            table.add_row(label if i == 0 else "", f"[bold {tint}]{_MARK[r.verdict]}[/]",
                          r.name, finding)
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=colour, highlight=False,
                      color_system="standard" if colour else None)
    console.print(f"[bold]flexlab site-check[/] on {report.options.iface} "
                  f"({report.iface_mac}, {report.iface_ipv4 or 'no IPv4'}) "
                  f"at {report.host}")
    console.print(table)
    console.print(f"[bold {_COLOUR[report.overall]}]{escape_markup(overall_line(report))}[/]  "
                  f"{counts_line(report)}")
    if html_path is not None:
        console.print(f"report: {html_path}")
    return buf.getvalue()


def escape_markup(text: str) -> str:
    """Escape rich markup in text that came off the wire."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


EXTRA_CSS = """
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:12px;
margin:0 0 20px}
.req{border-radius:10px;padding:12px 14px;color:#fff;min-height:84px}
.req .t{font-weight:700;font-size:14px}.req .s{font-size:12.5px;opacity:.95;margin-top:6px}
.v-pass{background:#1a7f37}.v-fail{background:#c62828}.v-warn{background:#b26a00}
.v-skip{background:#8a96a3}.v-incomplete{background:#6a3d9a}
.b-warn{background:var(--warn)}.b-incomplete{background:#6a3d9a}
.banner.warn{background:linear-gradient(90deg,#b26a00,#d18a1c)}
.banner.incomplete{background:linear-gradient(90deg,#6a3d9a,#8a5cc0)}
.hint{color:#6b3e00;margin-top:4px}
pre.ev{margin:6px 0 0;padding:8px 10px;background:#f6f8fa;border-radius:6px;font-size:12px;
white-space:pre-wrap}
"""


def _not_run_html(report: SiteReport) -> str:
    names = ", ".join(r.name for r in report.not_run())
    return f"<br>could not run: {_t(names)} — these requirements were not checked" \
        if names else ""


def _badge(v: CheckVerdict) -> str:
    return f'<span class="badge b-{v.value}">{_MARK[v].upper()}</span>'


def _grid(report: SiteReport) -> str:
    tiles = []
    for key, results in report.by_requirement().items():
        checked = [r.verdict for r in results if r.verdict != CheckVerdict.SKIP]
        v = worst(checked) if checked else CheckVerdict.SKIP  # a skipped part does not grey it
        bad = sorted((r for r in results
                      if r.verdict in (CheckVerdict.FAIL, CheckVerdict.INCOMPLETE,
                                       CheckVerdict.WARN)),
                     key=lambda r: -r.verdict.rank)
        line = bad[0].summary if bad else (results[0].summary if results else "not checked")
        tiles.append(f'<div class="req v-{v.value}"><div class="t">{_t(REQUIREMENTS[key])}</div>'
                     f'<div class="s">{_t(line)}</div></div>')
    return f'<div class="grid">{"".join(tiles)}</div>'


def _responders(report: SiteReport) -> list[dict[str, Any]]:
    """Every responder any check recorded under data['responders'] (merged by address)."""
    merged: dict[str, dict[str, Any]] = {}
    for r in report.results:
        for resp in r.data.get("responders", []) or []:
            if not isinstance(resp, dict) or "ip" not in resp:
                continue
            cur = merged.setdefault(str(resp["ip"]), {"ip": str(resp["ip"]), "roles": set(),
                                                      "macs": set(), "via": None, "flags": set()})
            cur["roles"].add(str(resp.get("role", "dhcp")))
            cur["macs"].update(str(m) for m in resp.get("answered", []) or [])
            cur["via"] = cur["via"] or resp.get("via")
            if resp.get("pxeclient"):
                cur["flags"].add("sends PXEClient")
    return list(merged.values())


def responder_map_svg(report: SiteReport) -> str:
    """A picture of the LAN as site-check saw it: this host in the middle, every server that
    answered around it, coloured by role, dashed when the answer came through a relay."""
    resp = _responders(report)
    if not resp:
        return '<p class="mut">No DHCP or ProxyDHCP server answered (or --passive saw none).</p>'
    conflicts = {m for r in report.results if r.name.startswith("responders.")
                 and r.verdict == CheckVerdict.FAIL for m in r.data.get("macs", []) or []}
    width, row = 860, 70
    height = 40 + row * len(resp)
    me_y = height // 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect x="20" y="{me_y - 28}" width="200" height="56" rx="8" fill="#16202c"/>',
             f'<text x="120" y="{me_y - 6}" fill="#fff" text-anchor="middle" font-weight="700">'
             f'this host ({_t(report.options.iface)})</text>',
             f'<text x="120" y="{me_y + 12}" fill="#b8c4d2" text-anchor="middle">'
             f'{_t(report.iface_ipv4 or report.iface_mac)}</text>']
    for i, r in enumerate(sorted(resp, key=lambda x: (sorted(x["roles"]), x["ip"]))):
        y = 20 + row * i + row // 2 - 10
        proxy = "proxy" in r["roles"]
        bad = bool(r["flags"]) or (proxy and r["macs"] & conflicts)
        fill = "#c62828" if bad else ("#3d6fa8" if proxy else "#1a7f37")
        dash = ' stroke-dasharray="6 4"' if r["via"] else ""
        parts.append(f'<line x1="220" y1="{me_y}" x2="520" y2="{y + 22}" stroke="{fill}" '
                     f'stroke-width="2"{dash}/>')
        if r["via"]:
            parts.append(f'<text x="370" y="{(me_y + y + 22) // 2 - 6}" fill="#5f6b7a" '
                         f'text-anchor="middle">via relay {_t(r["via"])}</text>')
        role = " + ".join(sorted("Boot Proxy" if x == "proxy" else "site DHCP"
                                 for x in r["roles"]))
        parts.append(f'<rect x="520" y="{y}" width="320" height="44" rx="8" fill="{fill}"/>')
        parts.append(f'<text x="532" y="{y + 18}" fill="#fff" font-weight="700">{_t(role)} '
                     f'{_t(r["ip"])}</text>')
        sub = ", ".join(sorted(r["flags"])) or (
            f'answered {", ".join(sorted(r["macs"]))}' if r["macs"] else "")
        parts.append(f'<text x="532" y="{y + 35}" fill="#fff">{_t(sub[:52])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _details(results: list[CheckResult]) -> str:
    rows = []
    for r in results:
        ev = "\n".join(r.evidence)
        rows.append(
            f'<tr class="r-{r.verdict.value}"><td>{_badge(r.verdict)}</td>'
            f'<td class="rid"><code>{_t(r.name)}</code></td><td>{_t(r.summary)}'
            + (f'<div class="hint">→ {_t(r.hint)}</div>' if r.hint else "")
            + (f'<pre class="ev">{_t(ev)}</pre>' if ev else "") + "</td></tr>")
    return ("<table><tr><th>verdict</th><th>check</th><th>finding and evidence</th></tr>"
            + "".join(rows) + "</table>")


def render_html(report: SiteReport) -> str:
    """One self-contained HTML page (no scripts, no external assets)."""
    overall = report.overall
    when = dt.datetime.fromtimestamp(report.started, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    sections = []
    for key, results in report.by_requirement().items():
        if results:
            sections.append(f"<section><h2>{_t(REQUIREMENTS[key])}</h2>{_details(results)}"
                            "</section>")
    banner_cls = {CheckVerdict.PASS: "pass", CheckVerdict.WARN: "warn",
                  CheckVerdict.INCOMPLETE: "incomplete"}.get(overall, "fail")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>flexlab site-check — {_t(report.host)} {_t(report.options.iface)}</title>
<style>{CSS}{EXTRA_CSS}</style></head><body>
<header><h1>Site check: {_t(report.host)} / {_t(report.options.iface)}</h1>
<div class="meta">{_t(when)} · interface <b>{_t(report.iface_mac)}</b>
{_t(report.iface_ipv4 or "no IPv4")} · took {report.finished - report.started:.1f} s</div>
</header><main>
<div class="banner {banner_cls}"><span class="big">SITE {overall.value.upper()}</span>
<span class="sub">{_t(counts_line(report))}{_not_run_html(report)}</span></div>
{_grid(report)}
<section><h2>Who answered on this LAN</h2>{responder_map_svg(report)}</section>
{''.join(sections)}
</main><footer>flexlab site-check · checks the KubeFlex on-prem requirements</footer>
</body></html>"""


def write_reports(report: SiteReport, out_dir: Path) -> tuple[Path, Path]:
    """Write report.json and report.html under ``out_dir``; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "site-check.json"
    html_path = out_dir / "site-check.html"
    json_path.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    html_path.write_text(render_html(report))
    return json_path, html_path
