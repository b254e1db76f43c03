"""docs/BENCHMARKS.md from bench/results/*.json and nothing else: rendering, no measuring.

Every figure in the document is read from a results file, and each file's provenance
(command, date, commit, versions, runs, load) is shown beside it, with what it lacks, so
no figure can be hand-written or quoted without its source. ``python -m bench.report``
rewrites the document from the files; ``--check`` says whether the committed one is what
the files give (tests/unit/bench/test_benchmarks_doc.py runs that check).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.provenance import commit_of, date_of, gaps, load_of, runs_of  # noqa: E402

__all__ = ["load_results", "main", "render", "render_dir", "run_verdict", "runs_verdict",
           "summary_rows"]

RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "BENCHMARKS.md"
SECTION_FILES = {"proxydhcp": "proxydhcp.json", "tftp_http": "tftp_http.json",
                 "vm": "vmboot.json", "site_scenarios": "site-scenarios.json",
                 "soak": "soak.json", "suite": "suite.json"}
"""Results file of each document section (the storms are every storm*.json)."""

DASH = "\u2013"  # a missing figure in a table


def fmt(value: Any, digits: int = 0, unit: str = "") -> str:
    """A table cell: an en dash for a missing figure, else the number rounded to ``digits``."""
    if value is None:
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = f"{value:,.{digits}f}"
    return f"{text}{unit}"


def _pct(ratio: Any) -> str:
    return DASH if ratio is None else f"{100 * float(ratio):.2f} %"


def _lat(lat: dict[str, Any] | None) -> str:
    if not lat:
        return " / ".join([DASH] * 3)
    return " / ".join(fmt(lat.get(p), 2) for p in ("p50", "p95", "p99"))


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "\u2026"


def _why(doc: dict[str, Any]) -> str:
    """The first reason a run did not pass: its error, else its first failed expectation."""
    if doc.get("error"):
        return _short(str(doc["error"]))
    failed = doc.get("failed_expectations") or []
    if not failed:
        return ""
    more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
    return f"{_short(str(failed[0]))}{more}"


def run_verdict(doc: dict[str, Any]) -> str | None:
    """One run's verdict for a summary row — "PASS", or "FAIL (why)" — so a figure is
    never read without it (1000 machines Ready in a run that FAILED is not a good run);
    None when the document carries no verdict."""
    verdict = doc.get("verdict")
    if verdict is None:
        return None
    word = str(verdict).upper()
    why = _why(doc) if verdict != "pass" else ""
    return f"{word} ({why})" if why else word


def runs_verdict(verdicts: Sequence[str]) -> str:
    """The verdict of a row that stands for several runs, naming each run's verdict in
    order ("FAIL: 1 of 3 runs did not pass (pass, fail, pass)"), so a median over the runs
    is never read as a good result when one of them failed."""
    if not verdicts:
        return "FAIL: no run"
    failed = [v for v in verdicts if v != "pass"]
    if failed:
        return f"FAIL: {len(failed)} of {len(verdicts)} runs did not pass " \
            f"({', '.join(verdicts)})"
    return f"PASS: all {len(verdicts)} runs passed"


def _runs_verdict(vm: dict[str, Any]) -> str | None:
    """The VM row's verdict: its runs' (:func:`runs_verdict`), else the document's own."""
    runs = [r for r in vm.get("runs") or [] if isinstance(r, dict) and "verdict" in r]
    if not runs:
        return run_verdict(vm)
    return runs_verdict([str(r["verdict"]) for r in runs])


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(benchmark, subject, headline) rows for the one table the runner prints; a row for
    a run that has a verdict starts with it."""
    rows: list[tuple[str, str, str]] = []
    proxy = results.get("proxydhcp")
    if isinstance(proxy, dict) and "systems" in proxy:
        for s in proxy["systems"]:
            rows.append(("proxydhcp", s["name"],
                         f"{fmt(s['offers_per_s'])} offers/s, {fmt(s['acks_per_s'])} acks/s "
                         f"(<1 % loss); offer p50/p95/p99 {_lat(s['latency_ms'])} ms"))
    elif proxy is not None:
        rows.append(("proxydhcp", DASH, f"not measured: {proxy.get('error')}"))
    tftp = results.get("tftp_http")
    if isinstance(tftp, dict) and "tftp" in tftp:
        for r in tftp["tftp"]["results"]:
            rows.append(("tftp", r["server"], f"{fmt(r['mb_per_s_median'], 1)} MB/s median"))
        for r in tftp["http"]["results"]:
            rows.append(("http", f"{r['server']} {r['file']}",
                         f"{fmt(r['mb_per_s_median'])} MB/s aggregate, {r['clients']} clients"))
    elif tftp is not None:
        rows.append(("tftp/http", DASH, f"not measured: {tftp.get('error')}"))
    for storm in _storms(results):
        if "machines" in storm:
            rows.append(("boot storm", f"{storm['machines']} sim machines",
                         _with_verdict(run_verdict(storm),
                                       f"{storm['ready']} of {storm['machines']} Ready; all "
                                       f"Ready in {fmt(storm['time_to_all_ready_s'], 1)} s; "
                                       f"power-on->Ready p50/p95 "
                                       f"{fmt(storm['ready_s']['p50'], 2)}/"
                                       f"{fmt(storm['ready_s']['p95'], 2)} s")))
        else:
            rows.append(("boot storm", DASH, f"not measured: {storm.get('error')}"))
    vm = results.get("vm")
    if isinstance(vm, dict):
        # SeaBIOS at the top level, OVMF under "ovmf" (bench/vmboot.py)
        for doc in (vm, vm.get("ovmf")):
            if not isinstance(doc, dict):
                continue
            rows.append(("vm boot", doc.get("subject", DASH),
                         _with_verdict(_runs_verdict(doc),
                                       f"{fmt(doc.get('ready_s'), 1)} s power-on→Ready")
                         if doc.get("ready_s")
                         else f"not measured: {doc.get('reason') or doc.get('error')}"))
    return rows


def _with_verdict(verdict: str | None, figure: str) -> str:
    return f"{verdict} — {figure}" if verdict else figure


def _cell(text: str) -> str:
    """A Markdown table cell: a ``|`` in a reason must not split the row."""
    return text.replace("|", "\\|")


def _storms(results: dict[str, Any]) -> list[dict[str, Any]]:
    storm = results.get("storm")
    if storm is None:
        return []
    return [s for s in (storm if isinstance(storm, list) else [storm]) if isinstance(s, dict)]


def _machine(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    keys = ("cpu", "nproc", "kernel", "python", "dnsmasq", "perfdhcp", "flexlab",
            "loadavg", "loadavg_at_end")
    return [f"- {k}: {m[k]}" for k in keys if k in m]


def _bounded(rate: float, limit: str | None) -> str:
    """A rate, as a lower bound ("≥ …, generator") when the server was not what ended its
    ladder (older files carry no limit: shown as they are)."""
    if limit in (None, "server"):
        return fmt(rate)
    return f"≥ {fmt(rate)} ({limit})"


def _proxydhcp(proxy: dict[str, Any]) -> list[str]:
    if "systems" not in proxy:
        return ["", f"Not measured: {proxy.get('error')}"]
    plan = proxy.get("plan", {})
    lines = [
        "",
        "| system | version | offers/s (<1 % loss) | loss | offer p50 / p95 / p99 ms | "
        "acks/s (<1 % loss) | loss | ack p50 / p95 / p99 ms |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in proxy["systems"]:
        lines.append(f"| {s['name']} | {s['version']} | "
                     f"{_bounded(s['offers_per_s'], s.get('offers_limit'))} | "
                     f"{_pct(s['drop_ratio'])} | {_lat(s['latency_ms'])} | "
                     f"{_bounded(s['acks_per_s'], s.get('acks_limit'))} | "
                     f"{_pct(s.get('ack_drop_ratio'))} | "
                     f"{_lat(s.get('ack_latency_ms'))} |")
    lines += ["", "Every step (offered rate → answered rate, loss, latency):", "",
              "| system | path | offered/s | sent/s | answered/s | loss | p50 / p95 / p99 ms |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    seconds = plan.get("step_seconds", 1) or 1
    for s in proxy["systems"]:
        for path, key in (("DISCOVER→OFFER", "offer_steps"), ("REQUEST→ACK 4011", "ack_steps")):
            for st in s.get(key, []):
                sent = st.get("sent_per_s", (st.get("sent") or 0) / seconds)
                lines.append(f"| {s['name']} | {path} | {fmt(st['offered_per_s'])} | "
                             f"{fmt(sent)} | {fmt(st['answered_per_s'])} | "
                             f"{_pct(st['drop_ratio'])} | {_lat(st['latency_ms'])} |")
    return lines


def _tftp_http(tftp: dict[str, Any]) -> list[str]:
    if "tftp" not in tftp:
        return ["", f"Not measured: {tftp.get('error')}"]
    t, h = tftp["tftp"], tftp["http"]
    lines = ["", f"TFTP: one {t['file_bytes'] / 1e6:.0f} MB file, one client, "
             f"{t['runs']} runs per case.", "",
             "| server / options | median MB/s | min | max |", "| --- | ---: | ---: | ---: |"]
    for r in t["results"]:
        lines.append(f"| {r['server']} | {fmt(r['mb_per_s_median'], 1)} | "
                     f"{fmt(r['mb_per_s_min'], 1)} | {fmt(r['mb_per_s_max'], 1)} |")
    lines += ["", f"HTTP: {h['clients']} concurrent clients each GET the whole file, "
              f"{h['runs']} runs.", "",
              "| server | file | median aggregate MB/s | p50 per client s | p95 per client s |",
              "| --- | --- | ---: | ---: | ---: |"]
    for r in h["results"]:
        lines.append(f"| {r['server']} | {r['file']} ({r['file_bytes'] / 1e6:.1f} MB) | "
                     f"{fmt(r['mb_per_s_median'])} | {fmt(r['per_client_p50_s'], 3)} | "
                     f"{fmt(r['per_client_p95_s'], 3)} |")
    return lines


def _storm(storms: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "| machines | Ready | time to all Ready s | power-on→Ready p50 / p95 / p99 s | "
        "DHCP retransmissions (machines) | run wall s | verdict |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    notes: list[str] = []
    for storm in storms:
        if "machines" not in storm:
            notes += ["", f"Not measured: {storm.get('error')}"]
            continue
        lines.append(
            f"| {storm['machines']} | {storm['ready']} | "
            f"{fmt(storm['time_to_all_ready_s'], 2)} | {_lat(storm['ready_s'])} | "
            f"{storm['dhcp_retransmissions']} ({storm['machines_with_retransmissions']}) | "
            f"{fmt(storm['wall_s'], 1)} | {storm['verdict']} |")
        ph = storm.get("phases_s", {})
        notes += ["", f"{storm['machines']} machines, phases (s): "
                  + ", ".join(f"{k} {v}" for k, v in ph.items()) + "; end states: "
                  + ", ".join(f"{k} {v}" for k, v in storm.get("states", {}).items()) + "."]
        cpu = _storm_cpu(storm)
        if cpu:
            notes.append(cpu)
        for reason, n in storm.get("not_ready_reasons", {}).items():
            notes.append(f"- not Ready because \"{reason}\": {n} machines")
        if storm.get("error"):
            notes.append(f"Run error: `{storm['error'][:400]}`")
        failed = storm.get("failed_expectations", [])
        for e in failed[:4]:
            notes.append(f"- failed expectation: {e[:240]}")
        if len(failed) > 4:
            notes.append(f"- … {len(failed) - 4} more failed expectations in the JSON")
    return lines + notes


def _storm_cpu(storm: dict[str, Any]) -> str:
    """Who used the 2 cores in a storm's median run: the harness (its emulator fleet) in
    the machines phase and each lab service over the run; "" for a file without them."""
    parts = []
    harness = storm.get("harness_cpu_s", {}).get("machines")
    if harness is not None:
        parts.append(f"harness (the emulators) {fmt(harness, 1)} in the machines phase")
    parts += [f"{name} {fmt(seconds, 1)}"
              for name, seconds in storm.get("services_cpu_s", {}).items()]
    return f"CPU seconds of the median run: {', '.join(parts)}." if parts else ""


def _date(doc: dict[str, Any]) -> str:
    return str(date_of(doc) or DASH)


def _commit(doc: dict[str, Any]) -> str:
    return str(commit_of(doc) or DASH)


def _runs(doc: dict[str, Any]) -> str:
    runs = runs_of(doc)
    return DASH if runs is None else str(runs)


def _load(doc: dict[str, Any]) -> str:
    return str(load_of(doc) or DASH)


def _source(name: str, doc: dict[str, Any] | list[dict[str, Any]] | None) -> list[str]:
    """The line under a section naming the file(s) its figures come from and when."""
    docs = doc if isinstance(doc, list) else [doc] if doc else []
    parts = [f"`bench/results/{d.get('_file', name)}` ({_date(d)}, commit {_commit(d)})"
             for d in docs]
    return ["", "Source: " + "; ".join(parts) + "."] if parts else []


def _provenance(files: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["", "| file | command | measured (UTC) | commit | runs | load at start | "
             "lacks |", "| --- | --- | --- | --- | ---: | --- | --- |"]
    for name, doc in sorted(files.items()):
        command = f"`{doc['command']}`" if doc.get("command") else DASH
        lack = ", ".join(gaps(doc)) or "nothing"
        lines.append(f"| {name} | {_cell(command)} | {_date(doc)} | {_commit(doc)} | "
                     f"{_runs(doc)} | {_load(doc)} | {_cell(lack)} |")
    return lines


def _section(title: str, how: str, source: str,
             doc: dict[str, Any] | list[dict[str, Any]], body: list[str]) -> list[str]:
    """One benchmark's section as every section lays it out: heading, how it was measured,
    the results file its figures are read from (:func:`_source`), then the figures."""
    return ["", f"## {title}", "", f"How: {how}", *_source(source, doc), *body]


def _site_scenarios(doc: dict[str, Any]) -> list[str]:
    lines = ["", "| scenario | verdicts | wall median s (min-max) | machine phase median s "
             "(min-max) |", "| --- | --- | ---: | ---: |"]
    for row in doc.get("scenarios", []):
        wall, mach = row.get("wall_s") or {}, row.get("machines_s") or {}
        lines.append(f"| {row['scenario']} | {_cell(runs_verdict(row.get('verdicts', [])))} | "
                     f"{fmt(wall.get('median'), 2)} ({fmt(wall.get('min'), 2)}-"
                     f"{fmt(wall.get('max'), 2)}) | {fmt(mach.get('median'), 2)} "
                     f"({fmt(mach.get('min'), 2)}-{fmt(mach.get('max'), 2)}) |")
    return lines


def _soak(doc: dict[str, Any]) -> list[str]:
    """The flake table: every test that did not pass in every round, with its outcomes."""
    rounds = doc.get("rounds", [])
    walls = doc.get("round_wall_s") or {}
    workers = (f"with {doc['workers']} xdist workers" if doc.get("workers")
               else "read back from the rounds' JUnit files (see the command)")
    lines = ["", f"{doc.get('runs', len(rounds))} rounds of `{doc.get('selection', '?')}` "
             f"{workers}; up to {doc.get('tests', '?')} tests a "
             f"round; round wall median {fmt(walls.get('median'), 1)} s "
             f"({fmt(walls.get('min'), 1)}-{fmt(walls.get('max'), 1)}).", ""]
    flakes = doc.get("flakes", [])
    broken = doc.get("always_failed", [])
    lines.append(f"**{len(flakes)} flaky test{'s' if len(flakes) != 1 else ''}** (passed in "
                 f"some rounds, failed in others); {len(broken)} failed in every round it ran.")
    if flakes or broken:
        lines += ["", "| test | passed (or xfailed) | failed | cause / status |",
                  "| --- | ---: | ---: | --- |"]
        for row in [*flakes, *broken]:
            why = row.get("cause") or "not explained yet: " + str(row.get("first_error", ""))
            lines.append(f"| `{_cell(row['test'])}` | {row['passed']} | {row['failed']} | "
                         f"{_cell(_short(why, 200))} |")
    if doc.get("note"):
        lines += ["", f"Note: {doc['note']}"]
    return lines


def _suite(doc: dict[str, Any]) -> list[str]:
    lines = ["", "| what | tests | failed | workers | shard | wall s median (min-max) | runs | "
             "measured (UTC) | commit | load at start |",
             "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | --- |"]
    for row in doc.get("measurements", []):
        wall = row.get("wall_s") or {}
        runs = row.get("runs") or []
        failed = sum(int(r.get("failures", 0)) + int(r.get("errors", 0)) for r in runs)
        loads = "; ".join(str(r.get("loadavg_at_start", DASH)) for r in runs)
        lines.append(f"| {_cell(row['what'])} | {row.get('tests', DASH)} | {failed} | "
                     f"{row.get('workers', DASH)} | {row.get('shard') or 'all'} | "
                     f"{fmt(wall.get('median'), 1)} ({fmt(wall.get('min'), 1)}-"
                     f"{fmt(wall.get('max'), 1)}) | {len(runs)} | {row.get('date_utc', DASH)} | "
                     f"{row.get('commit', DASH)} | {loads} |")
    return lines


_VM_AB_HOW = ("`bench/vmboot_ab.py` boots each configuration in turn (a fresh `bench/vmboot.py "
              "--runs 1` of its tree with its environment), round after round on one host, so "
              "the load of the hour falls on all of them alike; a boot that never got Ready "
              "counts apart, never as a time.")


def _vm_ab(doc: dict[str, Any]) -> list[str]:
    lines = []
    if doc.get("why"):
        lines += ["", f"Question: {doc['why']}"]
    lines += ["", "| configuration | machine | power-on → Ready s median (min-max) | boots | "
              "not Ready | kernel console s | /init s |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, per in (doc.get("summary") or {}).items():
        env = (doc.get("configs") or {}).get(name, {}).get("env") or {}
        label = name + (f" ({', '.join(f'{k}={v}' for k, v in env.items())})" if env else "")
        for machine, s in per.items():
            r = s.get("ready_s") or {}
            marks = s.get("console_s_median") or {}
            lines.append(f"| {_cell(label)} | {machine} | {fmt(r.get('median'), 1)} "
                         f"({fmt(r.get('min'), 1)}-{fmt(r.get('max'), 1)}) | {r.get('n', 0)} | "
                         f"{s.get('boots_not_ready', DASH)} | "
                         f"{fmt(marks.get('kernel_console'), 2)} | {fmt(marks.get('init'), 2)} |")
    lines += ["", "Console marks are seconds after power-on, medians over the boots: the "
              "kernel's first console line, and /init's first line."]
    return lines


def load_results(directory: Path = RESULTS) -> dict[str, Any]:
    """Every results file of ``directory``, arranged as :func:`render` reads them: one key
    per section, ``storm`` a list ordered by size, ``files`` every file by name."""
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError as exc:
            raise SystemExit(f"{path}: not JSON ({exc})") from exc
        if isinstance(doc, dict):
            doc["_file"] = path.name
            files[path.name] = doc
    results: dict[str, Any] = {"files": files}
    for key, name in SECTION_FILES.items():
        if name in files:
            results[key] = files[name]
    # bench/vmboot_ab.py's files (older hand-made A/B files have no "configs")
    vm_ab = [d for n, d in files.items()
             if n.startswith("vmboot-") and n.endswith("-ab.json") and "configs" in d]
    if vm_ab:
        results["vm_ab"] = vm_ab
    # a storm's own results; bench/storm_ab.py's A/B files ("configs") are comparisons,
    # listed with the other files, not storms to summarise
    storms = [d for n, d in files.items() if n.startswith("storm") and "configs" not in d]
    if storms:
        results["storm"] = sorted(storms, key=lambda d: (d.get("machines") or 0, d["_file"]))
    machine = next((d["machine"] for d in files.values()
                    if isinstance(d.get("machine"), dict) and "cpu" in d["machine"]), None)
    if machine:
        results["machine"] = machine
    return results


#: the sections after the VM one whose "how" is fixed text: (results key, heading, how,
#: results file, figures), in document order
_LATER_SECTIONS: tuple[tuple[str, str, str, str, Callable[[dict[str, Any]], list[str]]], ...] = (
    ("site_scenarios", "Whole-site scenarios, timed",
     "`bench/site_scenarios.py` runs each whole-site scenario with `ScenarioRunner` the "
     "stated number of times; wall is the whole run (build, boot, teardown, judge), the "
     "machine phase is power-on to the last machine's end state.",
     "site-scenarios.json", _site_scenarios),
    ("suite", "The test suite's wall time",
     "`scripts/suite-timing.py` times pytest runs (pytest-xdist workers, pytest-split "
     "shards from the committed `.test_durations`) and writes each run's wall time; "
     "docs/CI.md says how CI shards the suite.",
     "suite.json", _suite),
    ("soak", "Flakes: the sim tier, soaked",
     "`make soak N=…` (`scripts/soak.py`) reruns every sim-tier test and sim scenario N "
     "times under pytest-xdist and counts each test's outcomes; a flake is a test that "
     "passed in some rounds and failed in others.",
     "soak.json", _soak),
)


def render(results: dict[str, Any]) -> str:
    """The whole BENCHMARKS.md: provenance, machine, one section per benchmark, from
    ``results`` as :func:`load_results` arranges them (no clock, no host: the same files
    always give the same document)."""
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench.report` from `bench/results/*.json` alone — do not "
        "edit by hand; `make bench` (or any one benchmark) rewrites its results file and "
        "then this document. Every figure below is read from the file named under its "
        "section; each file's command, date, commit, runs and load are in the table, with "
        "what it still lacks (a median needs at least 3 runs).",
        "",
        "## Where the figures come from",
        *_provenance(results.get("files", {})),
        "",
        "## Machine",
        "",
        *_machine(results),
        "",
        "The host has 2 cores shared with other work: load generator and system under test "
        "compete for them with each other and with whatever else runs (load averages in "
        "the table above), so absolute figures are low and vary between runs by tens of "
        "percent. Compare rows of one results file rather than files.",
        "",
        "## Summary",
        "",
        "| benchmark | subject | figure |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in summary_rows(results)]
    proxy = results.get("proxydhcp")
    if proxy is not None:
        lines += [
            *_section(
                "ProxyDHCP: flexlab Boot Proxy vs dnsmasq proxy mode",
                "`bench/proxydhcp.py` builds one lab (segment `lan`, hosts `gen` and `sut`, "
                "network namespaces) and runs each proxy in turn in `sut`, each serving the same "
                f"{(proxy.get('plan') or {}).get('clients', '?')} client MACs (Boot Proxy: "
                "`--assignments-file`, log level warning; dnsmasq: `dhcp-host` per MAC with "
                "`dhcp-ignore=tag:!known`, `--quiet-dhcp`, no `log-dhcp`; in full runs also "
                "dnsmasq without the MAC list, answering everyone, to show what its "
                "one-by-one `dhcp-host` lookup costs). "
                "**DISCOVER→OFFER**: ISC `perfdhcp -4 -i -r RATE -M macs` with options 60 "
                "(`PXEClient:Arch:00007`), 93 and 94; perfdhcp sends as a relay (from UDP 67, "
                "`giaddr` set) so this measures the proxies' relay path; latency percentiles are "
                "from its per-exchange timers (`-x t`). **REQUEST→ACK on 4011**: "
                "`bench/pxe4011.py`, an open-loop asyncio UDP generator (perfdhcp cannot send "
                "43.71): UEFI x64 boot-server REQUESTs from UDP 4011 with `ciaddr` set and 43.71 "
                "= the type each proxy serves (0 for the Boot Proxy; 0x8001, dnsmasq's number "
                "for its `x86-64_EFI` service); latency is send → ACK seen by its event loop. "
                f"Each step lasts {(proxy.get('plan') or {}).get('step_seconds', '?')} s (count = "
                "rate * seconds) plus 1 s for late answers, which count as lost; a step losing "
                "≥ 1 % is run a second time and the better run kept (other work on the shared "
                "host causes loss bursts); rates rise until loss passes 20 % or two steps in a "
                "row lose ≥ 1 %, then bisect between "
                "the last good and the first bad rate. Headline: the highest answered rate with "
                "< 1 % loss, and its latency. \"sent/s\" below the offered rate means the load "
                "generator itself (Python, or perfdhcp sharing the 2 cores) was the limit.",
                "proxydhcp.json", proxy, _proxydhcp(proxy)),
            "", "ProxyDHCP notes (three-run spread, profile, storm): docs/BENCH-PROXYDHCP.md.",
        ]
    tftp = results.get("tftp_http")
    if tftp is not None:
        lines += _section(
            "TFTP and HTTP boot servers",
            "`bench/tftp_http.py` (its own notes: docs/BENCH-TFTP-HTTP.md), called by "
            "the runner with the flags shown in `bench/results/tftp_http.json`: on loopback, "
            "the Boot Proxy's TFTP server against tftpd-hpa and its HTTP server against "
            "nginx, one client implementation for all.",
            "tftp_http.json", tftp, _tftp_http(tftp))
    storms = _storms(results)
    if storms:
        storm = next((s for s in storms if "per_kind" in s), storms[0])
        lines += _section(
            "Boot storm (emulated machines)",
            "`bench/storm.py` loads `scenarios/boot-storm.yaml`, resizes both machine "
            "groups (SeaBIOS+iPXE and UEFI x64) to N copies each in code, puts its segment "
            "on a /20 (a scenario segment is a /24 whose site DHCP pool holds 127 leases) "
            "and runs it with `harness.builder.runner.ScenarioRunner`: Control Plane, "
            "site dnsmasq DHCP, the reference Boot Proxy and the sim driver's emulated "
            "firmware, all powered on at t = 0. Power-on→Ready per machine is the Control "
            "Plane's `node.ready` time minus the power-on time, from the run result; time to "
            "all Ready is the largest of them. Firmware timers run at the scenario's "
            f"time_scale ({storm.get('time_scale')}), so this is the harness and proxies' "
            "throughput, not what real firmware would take. DHCP retransmissions are "
            "requests a machine sent again because no answer came in time: the storm's "
            "drops as clients saw them.",
            "storm.json", storms, _storm(storms))
    vm = results.get("vm")
    if vm is not None:
        lines += ["", "## Virtual machine power-on → Ready", *_source("vmboot.json", vm), ""]
        if vm.get("ready_s"):
            lines.append(f"{vm.get('subject')}: **{fmt(vm['ready_s'], 1)} s** power-on → "
                         f"Ready (accelerator: {vm.get('accel', '?')}; run wall "
                         f"{fmt(vm.get('wall_s'), 1)} s, verdict {vm.get('verdict')}). "
                         f"How: {vm.get('how', '')}")
            if vm.get("ready_all_s"):
                lines.append("")
                lines.append("Every boot (s): " + ", ".join(fmt(x, 1) for x in vm["ready_all_s"]))
            ovmf = vm.get("ovmf")
            if isinstance(ovmf, dict) and ovmf.get("ready_s"):
                boots = [r.get("ready_s") for r in ovmf.get("runs") or [] if isinstance(r, dict)]
                lines += ["", f"{ovmf.get('subject')}: **{fmt(ovmf['ready_s'], 1)} s** "
                          f"power-on → Ready; every boot (s): "
                          + ", ".join(fmt(x, 1) for x in boots)]
            split = vm.get("phase_split_s") or {}
            if split:
                lines += ["", "| phase (median) | seconds |", "| --- | ---: |"]
                lines += [f"| {name} | {fmt(sec, 2)} |" for name, sec in split.items()]
                lines.append("")
                lines.append("Phases are read off the capture: firmware = power-on → first "
                             "DISCOVER; dhcp+proxy → first TFTP request; tftp → last TFTP "
                             "packet; http → last answer of the proxy's HTTP server (script, "
                             "kernel, initrd); kernel → the agent's first Control Plane call; "
                             "agent → its ready call.")
        else:
            lines.append(f"Not measured: {vm.get('reason') or vm.get('error')}")
    for doc in results.get("vm_ab", []):
        lines += _section(f"Virtual machine boot: configurations in turn ({doc['_file']})",
                          _VM_AB_HOW, doc["_file"], doc, _vm_ab(doc))
    for key, title, how, source, body in _LATER_SECTIONS:
        doc = results.get(key)
        if doc is not None:
            lines += _section(title, how, source, doc, body(doc))
    lines += [
        "", "## Known limits of these measurements", "",
        "- Two shared cores: the load generators (perfdhcp, bench/pxe4011.py, the TFTP/HTTP "
        "clients, the sim fleet) run on the same cores as the servers they measure.",
        "- bench/pxe4011.py is Python: where \"sent/s\" falls short of \"offered/s\" the "
        "generator, not the proxy, was the limit, and its latencies include its own "
        "event-loop delay.",
        "- perfdhcp exercises the relay path only (it always sets `giaddr`); the broadcast "
        "path of a client on the proxy's own segment is not measured here.",
        "- The boot storm measures the whole harness (one Python process emulates every "
        "machine; the Control Plane rejects a node whose agent clock lags by more than 1 s, "
        "which happens when that process falls behind), not the proxy alone.",
        "",
    ]
    return "\n".join(lines)


def render_dir(directory: Path = RESULTS) -> str:
    """The document for the results files of ``directory``."""
    return render(load_results(directory))


def main(argv: list[str] | None = None) -> int:
    """Write docs/BENCHMARKS.md from bench/results, or with ``--check`` only compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the document is not what the results files give")
    args = parser.parse_args(argv)
    text = render_dir(args.results)
    if args.check:
        current = args.doc.read_text() if args.doc.is_file() else ""
        if current != text:
            print(f"{args.doc} is not what {args.results}/*.json give: run "
                  "`python -m bench.report` and commit both", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(text)
    print(f"wrote {args.doc} from {len(load_results(args.results)['files'])} results files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
