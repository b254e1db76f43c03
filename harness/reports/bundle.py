"""The results bundle: one tar.gz a third party can read without flexlab.

Modelled on Sonobuoy's results tarball: ``meta/`` says what ran and with what
(every scenario default written out, tool versions), ``results/results.yaml``
lists every check with Sonobuoy's status words (passed/failed/skipped),
``results/junit.xml`` holds the same checks for CI tools, ``results/rules.yaml``
states every rule the run judged (so the bundle needs no copy of flexlab's
docs), and ``evidence/`` holds what the verdicts rest on. README.txt inside the
archive explains the layout.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import platform
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.capture.events import Capture
from harness.judge.result import RunResult
from harness.reports.errors import ReportError
from harness.reports.html import load_captures, render_html, rule_rows
from harness.reports.junit import run_suite, write_junit
from harness.reports.ladder import CaptureIndex, index_captures, machine_ladder, render_svg
from harness.reports.serialize import finding_to_dict, to_plain
from harness.rules.catalog import RULES
from harness.rules.model import Verdict

FORMAT = "flexlab-results/2"  # 2: Sonobuoy's status words, junit.xml, rules.yaml
# flexlab's verdicts -> the words Sonobuoy's results use, which readers of bundles know
STATUS = {"pass": "passed", "fail": "failed", "skip": "skipped"}

README = """flexlab results bundle
======================

This archive is the complete record of one flexlab scenario run: what ran,
what was checked, and the evidence. Nothing in it needs flexlab to be read.

meta/run.json         the run: scenario "{scenario}" as resolved (every default
                      written out), tier, lab id "{lab_id}", start and finish
                      (epoch seconds and ISO 8601 UTC), tool versions (flexlab,
                      python, kernel, dnsmasq, qemu, docker...), phases, machines
                      with their timelines, every rule finding, and "evidence":
                      where each original file is in this archive.
results/results.yaml  one entry per check: name, kind ("expectation" or
                      "rule"), status (passed | failed | skipped, as in
                      Sonobuoy's results), message. Expectations add
                      "expectation" (run, machine, cluster, rule, conflict);
                      rules add level (MUST/SHOULD/MAY), segment and the
                      failing findings with pcap frame numbers. A rule that
                      applied to nothing is "skipped". "summary" counts
                      statuses; "status" is the run's (passed | failed).
results/junit.xml     the same checks as JUnit XML, for CI test reporters
                      (a SHOULD/MAY failure passes there with a warning: it
                      does not fail the run).
results/rules.yaml    every rule this run judged: id, level, statement and
                      the specification section it comes from.
evidence/summary.html the human summary (self-contained; open in a browser)
evidence/pcaps/       one packet capture per network segment (pcap)
evidence/logs/        every component's log
evidence/consoles/    machine serial consoles, when there were any
evidence/ladders/     one ladder (sequence) diagram per machine (SVG)

Verdict of this run: {verdict}. Rule ids are explained in results/rules.yaml.
"""

# gzip's own default. tarfile's is 9, which on a 200-machine storm's bundle took about three
# times the CPU for a bundle under 1 % smaller (bench/results/bundle-gzip-levels.json), and
# the suite writes ~100 bundles on a CPU-bound host.
BUNDLE_GZIP_LEVEL = 6


def pack_tree(root: Path, target: Path, level: int = BUNDLE_GZIP_LEVEL) -> None:
    """Write every file and directory under ``root`` into the tar.gz ``target``, sorted,
    named relative to ``root`` (the bundle's layout; bench/bundle_gzip.py times it)."""
    with tarfile.open(target, "w:gz", compresslevel=level) as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)


def tool_version(argv: list[str]) -> str:
    """The first line a tool prints for ``argv`` (e.g. ``dnsmasq --version``); "absent"
    when it cannot run, "unknown" when it prints nothing."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return "absent"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def full_versions(recorded: Mapping[str, str]) -> dict[str, str]:
    """The run's recorded versions, completed with what this host reports for the rest."""
    out = dict(recorded)
    probes: dict[str, list[str]] = {
        "dnsmasq": ["dnsmasq", "--version"],
        "qemu": ["qemu-system-x86_64", "--version"],
        "docker": ["docker", "--version"],
    }
    out.setdefault("python", platform.python_version())
    out.setdefault("kernel", platform.release())
    for key, argv in probes.items():
        if key not in out:
            out[key] = tool_version(argv)
    return out


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def results_document(result: RunResult) -> dict[str, Any]:
    """What results/results.yaml holds: every expectation and every rule, judged."""
    checks: list[dict[str, Any]] = []
    for e in result.expectations:
        checks.append(
            {
                "name": f"{e.kind} {e.subject}: {e.description}",
                "kind": "expectation",
                "expectation": e.kind,
                "status": STATUS[e.verdict],
                "message": e.detail,
            }
        )
    for seg, findings in result.findings.items():
        for row in rule_rows({seg: findings}):
            status = {"fail": "failed", "pass": "passed"}.get(row.status, "skipped")
            failing = [
                {k: v for k, v in finding_to_dict(f).items() if k != "rule_id"}
                for f in findings
                if f.rule_id == row.rule_id and f.verdict is Verdict.FAIL
            ]
            entry: dict[str, Any] = {
                "name": row.rule_id,
                "kind": "rule",
                "level": row.level,
                "segment": seg,
                "status": status,
                "message": "; ".join(row.failures or list(dict.fromkeys(row.notes))),
            }
            if failing:
                entry["findings"] = failing
            checks.append(entry)
    summary = {s: sum(1 for c in checks if c["status"] == s) for s in STATUS.values()}
    return {
        "format": FORMAT,
        "scenario": result.scenario_name,
        "lab_id": result.lab_id,
        "status": STATUS[result.verdict],
        "verdict": result.verdict,
        "error": result.error,
        "summary": summary,
        "checks": checks,
    }


def rules_document(result: RunResult) -> dict[str, Any]:
    """results/rules.yaml: each rule the run judged, stated, so a reader of the bundle
    needs neither flexlab nor its CONFORMANCE.md to know what a rule id means."""
    ids = sorted({f.rule_id for fs in result.findings.values() for f in fs})
    rules = []
    for rule_id in ids:
        known = RULES.get(rule_id)
        rules.append({"id": rule_id, "level": known.level.value if known else None,
                      "statement": known.statement if known else "not in this flexlab's "
                      "catalogue", "source": known.citation if known else None})
    return {"format": FORMAT, "rules": rules}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "unnamed"


def _resolve(path: Path, base: Path | None) -> Path | None:
    for candidate in (Path(path), (base / path) if base else None):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def write_bundle(
    result: RunResult,
    directory: Path,
    *,
    captures: Mapping[str, Capture | CaptureIndex] | None = None,
    base: Path | None = None,
) -> Path:
    """Write ``flexlab-<scenario>-<lab id>.tar.gz`` into ``directory``; return its path.

    Evidence files that cannot be found (or ``base`` / them) are listed under
    ``missing_evidence`` in meta/run.json rather than failing the bundle.
    """
    directory = Path(directory)
    indexes = index_captures(load_captures(result, base) if captures is None else captures)
    stem = f"flexlab-{_safe(result.scenario_name)}-{_safe(result.lab_id)}"
    target = directory / f"{stem}.tar.gz"
    evidence: dict[str, str] = {}
    missing: list[str] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{stem}-") as tmp:
            root = Path(tmp)
            ev = root / "evidence"
            for sub in ("pcaps", "logs", "consoles", "ladders"):
                (ev / sub).mkdir(parents=True)

            def take(path: Path, dest: str) -> None:
                found = _resolve(path, base)
                if found is None:
                    missing.append(str(path))
                    return
                shutil.copyfile(found, ev / dest)
                evidence[str(path)] = f"evidence/{dest}"

            for seg, p in result.pcaps.items():
                take(p, f"pcaps/{_safe(seg)}.pcap")
            for p in result.logs:
                take(p, f"logs/{_safe(Path(p).name)}")
            for m in result.machines:
                if m.console is not None:
                    take(m.console, f"consoles/{_safe(m.name)}.log")
                svg = render_svg(machine_ladder(result, m, indexes))
                (ev / "ladders" / f"{_safe(m.name)}.svg").write_text(svg, encoding="utf-8")
                evidence[f"ladder:{m.name}"] = f"evidence/ladders/{_safe(m.name)}.svg"

            def link(path: Path) -> str:
                inside = evidence.get(str(path))
                return inside.removeprefix("evidence/") if inside else str(path)

            html = render_html(result, captures=indexes, link=link)
            (ev / "summary.html").write_text(html, encoding="utf-8")
            evidence["summary"] = "evidence/summary.html"

            meta = to_plain(result)
            meta.update(
                {
                    "bundle_format": FORMAT,
                    "versions": full_versions(result.versions),
                    "started_iso": _iso(result.started),
                    "finished_iso": _iso(result.finished),
                    "evidence": evidence,
                    "missing_evidence": missing,
                }
            )
            (root / "meta").mkdir()
            (root / "meta" / "run.json").write_text(
                json.dumps(meta, indent=2, default=str, ensure_ascii=False), encoding="utf-8"
            )
            (root / "results").mkdir()
            (root / "results" / "results.yaml").write_text(
                yaml.safe_dump(results_document(result), sort_keys=False, allow_unicode=True),
                encoding="utf-8",
            )
            write_junit([run_suite(result)], root / "results" / "junit.xml")
            (root / "results" / "rules.yaml").write_text(
                yaml.safe_dump(rules_document(result), sort_keys=False, allow_unicode=True),
                encoding="utf-8",
            )
            (root / "README.txt").write_text(
                README.format(
                    scenario=result.scenario_name,
                    lab_id=result.lab_id,
                    verdict=result.verdict.upper(),
                ),
                encoding="utf-8",
            )
            partial = target.with_name(target.name + ".partial")
            pack_tree(root, partial)
            partial.replace(target)
    except OSError as exc:
        raise ReportError(
            f"cannot write the results bundle {target}: {exc}; check the directory is writable"
        ) from exc
    return target


def read_member(bundle: Path, name: str) -> bytes:
    """One file of a bundle (e.g. ``results/results.yaml``), for tools and tests."""
    with tarfile.open(bundle, "r:gz") as tar:
        member = tar.extractfile(name)
        if member is None:
            raise ReportError(f"{bundle} has no file {name}; is it a flexlab bundle?")
        return io.BytesIO(member.read()).getvalue()
