"""The HTML summary, opened by a real headless Chromium: what it shows, and that it
asks for nothing over the network."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from harness.judge.result import RunResult
from harness.reports.html import render_html, rule_rows, write_html

pytestmark = pytest.mark.unit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.needs(
    CHROMIUM is not None, reason="needs chromium for the headless browser test: "
    "apt-get install chromium"
)
BROWSER_TIMEOUT = 90


def chromium(url: str, *extra: str) -> str:
    """Run headless Chromium once on ``url``; DNS is mapped to nothing so that no
    request (the page's or the browser's own) can leave this host."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="fltest-chromium-") as profile:
        proc = subprocess.run(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                "--host-resolver-rules=MAP * ~NOTFOUND", *extra, url,
            ],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT, check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def page_requests(netlog: Path) -> list[str]:
    """URLs the page itself asked for (browser housekeeping has no origin)."""
    data = json.loads(netlog.read_text())
    names = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    out = []
    for ev in data["events"]:
        p = ev.get("params") or {}
        if names.get(ev["type"]) == "URL_REQUEST_START_JOB" and "url" in p:
            if p.get("initiator") == "not an origin" or p["url"].startswith("file:"):
                continue
            out.append(p["url"])
    return out


class Refs(HTMLParser):
    """Every tag and every href/src the page holds."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.refs += [v or "" for k, v in attrs if k in ("href", "src", "xlink:href", "action")]


@pytest.fixture
def summary(sample_run: RunResult, tmp_path: Path) -> Path:
    return write_html(sample_run, tmp_path / "out" / "summary.html")


def test_file_is_self_contained(summary: Path) -> None:
    text = summary.read_text()
    assert not re.search(r"https?://", text), "no URL of any kind may appear in the file"
    assert "@import" not in text
    assert set(re.findall(r"url\(([^)]*)\)", text)) <= {
        f"#m{i}-ah-{p}" for i in range(9) for p in ("dhcp", "tftp", "http", "note")
    }, "url() may only name the page's own arrow markers"
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), "ids must be unique across the inline ladders"
    refs = Refs()
    refs.feed(text)
    assert not {"script", "link", "iframe", "img", "object", "embed"} & set(refs.tags)
    assert refs.refs, "evidence links are expected"
    for ref in refs.refs:
        assert not re.match(r"^[a-z][a-z0-9+.-]*:", ref), ref
        assert (summary.parent / unquote(ref)).is_file(), f"dangling link {ref}"


def test_rules_are_grouped_with_counts(sample_run: RunResult) -> None:
    rows = rule_rows(sample_run.findings)
    assert rows[0].rule_id == "OFFER-3" and rows[0].status == "fail"
    assert rows[0].level == "MUST" and rows[0].counts["fail"] == 1
    assert {r.status for r in rows} >= {"pass", "not-applicable"}


def test_a_passing_run_says_so(sample_run: RunResult) -> None:
    sample_run.expectations = [e for e in sample_run.expectations if e.verdict != "fail"]
    sample_run.findings = {}
    html = render_html(sample_run)
    assert 'class="banner pass"' in html and "all 3 expectations hold" in html


@needs_chromium
def test_chromium_renders_the_verdict_ladders_and_failing_rule(
    summary: Path, sample_run: RunResult, tmp_path: Path
) -> None:
    netlog = tmp_path / "net.json"
    dom = chromium(summary.as_uri(), "--dump-dom", f"--log-net-log={netlog}")
    assert "<html" in dom
    banner = re.search(r'<div class="banner fail" id="verdict">(.*?)</div>', dom, re.S)
    assert banner and "FAIL" in banner.group(1) and "2 of 5 expectations failed" in banner.group(1)
    for m in sample_run.machines:
        block = re.search(rf'<div class="machine" id="machine-{m.name}">(.*?)</svg>', dom, re.S)
        assert block, f"machine {m.name} has no rendered ladder"
        assert "<svg" in block.group(1) and m.mac in block.group(1)
    assert 'id="rule-OFFER-3"' in dom and "\u2717 OFFER-3" in dom
    assert page_requests(netlog) == []


@needs_chromium
def test_the_request_detector_sees_a_remote_reference(tmp_path: Path) -> None:
    """Control: a page that does reference the network is caught (the name is never
    resolved: the host resolver maps everything to nothing)."""
    page = tmp_path / "bad.html"
    page.write_text('<img src="http://flexlab-test.invalid/x.png">')
    netlog = tmp_path / "net.json"
    chromium(page.as_uri(), "--dump-dom", f"--log-net-log={netlog}")
    assert page_requests(netlog) == ["http://flexlab-test.invalid/x.png"]


@needs_chromium
def test_screenshot_is_drawn(summary: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    chromium(summary.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000


def test_big_runs_draw_problem_machines_first_and_cap_the_rest(
    sample_run: RunResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.reports.html as html_mod

    monkeypatch.setattr(html_mod, "MAX_LADDERS", 1)
    html = render_html(sample_run)
    order = re.findall(r'<div class="machine" id="machine-([^"]+)">', html)
    assert order[:2] == ["http", "late"]  # not Ready first, declared order kept
    assert html.count("<svg") == 2  # both problem machines; no Ready one fits the budget
    assert html.count("ladder not drawn") == 2
