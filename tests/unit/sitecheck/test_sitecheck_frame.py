"""The site-check frame: options, the runner's ordering and crash isolation, the renderers."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from harness.sitecheck import cli, render, runner
from harness.sitecheck.model import CheckResult, CheckVerdict, SiteCheckError, SiteContext, worst

pytestmark = pytest.mark.unit


def _args(*argv: str) -> cli.SiteCheckOptions:
    return cli.options_from(cli.build_parser().parse_args(["--iface", "eth9", *argv]))


def test_options_parse_and_normalise() -> None:
    opts = _args("--serve", "AA-BB-CC-DD-EE-01,aa:bb:cc:dd:ee:02", "--mac", "02:00:00:00:00:09",
                 "--ports", "80,8443", "--control-plane", "https://cp.example:8443")
    assert opts.serve_macs == ["aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"]
    assert opts.probe_macs == ["02:00:00:00:00:09"]
    assert opts.ports == [80, 8443]


@pytest.mark.parametrize("argv, needle", [
    (["--serve", "zz:00"], "not a MAC"),
    (["--ports", "80,http"], "comma-separated"),
    (["--ports", "0"], "1..65535"),
    (["--control-plane", "cp.example"], "http(s)://"),
    (["--listen", "0"], "--listen"),
    (["--passive", "--serve", "02:00:00:00:00:01"], "pick one"),
])
def test_bad_options_are_clear_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(SiteCheckError, match=None) as err:
        _args(*argv)
    assert needle in str(err.value)


def test_main_reports_bad_input_with_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--iface", "eth9", "--ports", "x"]) == 2
    assert "--ports" in capsys.readouterr().err


def test_worst_orders_verdicts() -> None:
    assert worst([CheckVerdict.PASS, CheckVerdict.WARN, CheckVerdict.SKIP]) is CheckVerdict.WARN
    assert worst([CheckVerdict.PASS, CheckVerdict.FAIL, CheckVerdict.WARN]) is CheckVerdict.FAIL
    assert worst([]) is CheckVerdict.PASS


def test_unknown_requirement_is_refused() -> None:
    with pytest.raises(ValueError):
        CheckResult("nonsense", "x", CheckVerdict.PASS, "x")


def _fake_checks(monkeypatch: pytest.MonkeyPatch, funcs: dict[str, object],
                 requirements: list[str], *, absent: bool = True) -> list[str]:
    calls: list[str] = []
    mod = types.ModuleType("fake_checks")
    for name, fn in funcs.items():
        def wrapped(ctx: SiteContext, fn: object = fn, name: str = name) -> list[CheckResult]:
            calls.append(name)
            return fn(ctx)  # type: ignore[operator,no-any-return]
        setattr(mod, name, wrapped)
    monkeypatch.setitem(sys.modules, "fake_checks", mod)
    monkeypatch.setattr(runner, "CHECKS", [("fake_checks", n, req, n)
                                           for n, req in zip(funcs, requirements, strict=True)]
                        + ([("harness.sitecheck.not_built_yet", "check_x", "l2", "absent")]
                           if absent else []))
    monkeypatch.setattr(runner, "_check_privileges", lambda options: None)
    monkeypatch.setattr(runner, "interface_facts", lambda iface: ("02:00:00:00:00:01",
                                                                  "10.9.0.2/24"))
    return calls


def test_runner_keeps_going_after_a_crashing_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def dhcp(ctx: SiteContext) -> list[CheckResult]:
        ctx.facts.dns_servers.append("10.9.0.1")
        return [CheckResult("dhcp", "dhcp.offers", CheckVerdict.PASS, "one server offered")]

    def boom(ctx: SiteContext) -> list[CheckResult]:
        raise RuntimeError("bug")

    def dns(ctx: SiteContext) -> list[CheckResult]:
        # later checks see what earlier ones learned
        assert ctx.facts.dns_servers == ["10.9.0.1"]
        return [CheckResult("dns", "dns.public", CheckVerdict.WARN, "slow")]

    calls = _fake_checks(monkeypatch, {"check_dhcp": dhcp, "check_serve": boom,
                                       "check_dns": dns}, ["dhcp", "proxydhcp", "dns"])
    lines: list[str] = []
    report = runner.run_site_check(_args(), lines.append)
    assert calls == ["check_dhcp", "check_serve", "check_dns"]
    crashed = [r for r in report.results if r.name.endswith(".crashed")]
    assert len(crashed) == 1 and crashed[0].verdict is CheckVerdict.FAIL
    assert "RuntimeError: bug" in crashed[0].summary
    assert report.overall is CheckVerdict.FAIL
    assert any("dhcp.offers" in line for line in lines)


def _report(verdicts: dict[str, CheckVerdict]) -> runner.SiteReport:
    rep = runner.SiteReport(options=_args(), host="h1", iface_mac="02:00:00:00:00:01",
                            iface_ipv4="10.9.0.2/24", started=1.0, finished=3.5)
    for name, v in verdicts.items():
        req = name.split(".")[0]
        rep.results.append(CheckResult(
            req, name, v, f"{name} is {v.value} <b>", evidence=["line <1>", "line 2"],
            hint="do this" if v is not CheckVerdict.PASS else "",
            data={"responders": [{"ip": "10.9.0.1", "role": "dhcp", "answered": []},
                                 {"ip": "10.9.0.7", "role": "proxy", "via": "10.8.0.1",
                                  "answered": ["02:00:00:00:00:01"]}]}))
    return rep


def test_screen_shows_every_requirement_and_the_overall(tmp_path: Path) -> None:
    rep = _report({"dhcp.offers": CheckVerdict.PASS, "dns.rfc2136": CheckVerdict.WARN,
                   "time.offset": CheckVerdict.FAIL})
    text = render.render_screen(rep, tmp_path / "x.html", width=140, colour=False)
    for label in ("1 site DHCP", "4 DNS", "5 time", "7 layer 2"):
        assert label in text
    assert "SITE FAIL" in text and "1 pass · 1 warn · 1 fail" in text
    assert "→ do this" in text
    assert "not checked" in text  # requirements with no result say so


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    rep = _report({"dhcp.offers": CheckVerdict.PASS, "proxydhcp.offer": CheckVerdict.PASS})
    json_path, html_path = render.write_reports(rep, tmp_path)
    html = html_path.read_text()
    assert "SITE PASS" in html and "<svg" in html and "via relay 10.8.0.1" in html
    # text off the wire is escaped, never markup
    assert "dhcp.offers is pass &lt;b&gt;" in html and "dhcp.offers is pass <b>" not in html
    assert "<script" not in html and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    data = json.loads(json_path.read_text())
    assert data["overall"] == "pass" and len(data["results"]) == 2


def test_a_skipped_part_does_not_grey_out_a_passing_requirement() -> None:
    rep = _report({"dns.public": CheckVerdict.PASS, "dns.hostnames": CheckVerdict.SKIP,
                   "time.ntp": CheckVerdict.SKIP})
    grid = render._grid(rep)
    assert '<div class="req v-pass"><div class="t">4. DNS' in grid
    assert '<div class="req v-skip"><div class="t">5. Time' in grid


def _dhcp_pass(ctx: SiteContext) -> list[CheckResult]:
    return [CheckResult("dhcp", "dhcp.offers", CheckVerdict.PASS, "one server offered")]


def _cannot_run(ctx: SiteContext) -> list[CheckResult]:
    raise SiteCheckError("cannot read eth9 over netlink: permission denied")


def _dns_fails(ctx: SiteContext) -> list[CheckResult]:
    return [CheckResult("dns", "dns.public", CheckVerdict.FAIL, "example.com does not resolve")]


def test_a_check_that_could_not_run_makes_the_site_incomplete(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Everything that ran passed, one check could not run: INCOMPLETE, exit 3, and the
    table, the HTML and the JSON all say which check and why — never SITE PASS."""
    # a table as wide as a terminal: a narrow one (a pytest-xdist worker's) wraps the
    # reason across rows and the text looked for is split by the table's borders
    monkeypatch.setenv("COLUMNS", "200")
    _fake_checks(monkeypatch, {"check_dhcp": _dhcp_pass, "check_l2": _cannot_run},
                 ["dhcp", "l2"], absent=False)
    status = cli.main(["--iface", "eth9", "-q", "--out", str(tmp_path)])
    assert status == cli.EXIT_INCOMPLETE == 3
    screen = capsys.readouterr().out
    assert "SITE INCOMPLETE (could not run: l2.not-run)" in screen and "SITE PASS" not in screen
    assert "NOT RUN" in screen and "permission denied" in screen
    assert "1 pass · 0 warn · 0 fail · 1 not run · 0 skipped" in screen
    data = json.loads((tmp_path / "site-check.json").read_text())
    assert data["overall"] == "incomplete" and data["not_run"] == ["l2.not-run"]
    [l2] = [r for r in data["results"] if r["requirement"] == "l2"]
    assert l2["verdict"] == "incomplete" and "permission denied" in l2["summary"]
    html = (tmp_path / "site-check.html").read_text()
    assert '<div class="banner incomplete"><span class="big">SITE INCOMPLETE' in html
    assert "could not run: l2.not-run" in html and 'class="req v-incomplete"' in html


def test_a_check_that_fails_is_a_fail_not_incomplete(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """The site's own problem is FAIL (exit 1); with a check that also could not run, the
    failure still decides the site, and the unrun check is still named."""
    _fake_checks(monkeypatch, {"check_dhcp": _dhcp_pass, "check_dns": _dns_fails},
                 ["dhcp", "dns"], absent=False)
    assert cli.main(["--iface", "eth9", "-q", "--out", str(tmp_path / "a")]) == cli.EXIT_FAIL
    _fake_checks(monkeypatch, {"check_dns": _dns_fails, "check_l2": _cannot_run},
                 ["dns", "l2"], absent=False)
    assert cli.main(["--iface", "eth9", "-q", "--out", str(tmp_path / "b")]) == cli.EXIT_FAIL
    data = json.loads((tmp_path / "b" / "site-check.json").read_text())
    assert data["overall"] == "fail" and data["not_run"] == ["l2.not-run"]


def test_a_check_missing_from_the_build_is_not_silently_left_out(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_checks(monkeypatch, {"check_dhcp": _dhcp_pass}, ["dhcp"])  # + an absent module
    report = runner.run_site_check(_args())
    assert report.overall is CheckVerdict.INCOMPLETE
    assert "has no harness.sitecheck.not_built_yet" in report.not_run()[0].summary


def test_exit_status_per_overall_verdict() -> None:
    assert [cli.exit_status(v) for v in CheckVerdict] == [0, 0, 0, 3, 1]
    assert [v.value for v in CheckVerdict] == ["pass", "skip", "warn", "incomplete", "fail"]


def test_help_documents_every_exit_status() -> None:
    text = cli.build_parser().format_help()
    for line in ("0    SITE PASS", "1    SITE FAIL", "2    bad command line",
                 "3    no verdict: not root, or SITE INCOMPLETE", "130  interrupted"):
        assert line in text
