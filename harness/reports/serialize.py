"""RunResult to JSON and back, so a report can be regenerated from a run.json alone.

The JSON keeps every field of :class:`RunResult` (paths as strings, findings as
plain dicts per segment) and adds ``verdict`` and ``duration`` for readers that
do not have flexlab; ``from_json`` ignores those derived fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.judge.observed import from_plain as observed_from_plain
from harness.judge.observed import to_plain as observed_to_plain
from harness.judge.result import ExpectationResult, MachineResult, RunResult, TimelineEvent
from harness.reports.errors import RunFileError
from harness.rules.model import Finding, Level, Verdict

FORMAT = "flexlab-run/1"


def _path(p: Path | None) -> str | None:
    return None if p is None else str(p)


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """A finding as plain JSON data (enum values as their strings)."""
    return f.to_dict()


def finding_from_dict(d: dict[str, Any]) -> Finding:
    """The inverse of :func:`finding_to_dict`."""
    return Finding(
        rule_id=str(d["rule_id"]),
        level=Level(d["level"]),
        verdict=Verdict(d["verdict"]),
        message=str(d.get("message", "")),
        frames=tuple(int(x) for x in d.get("frames", ())),
        client=d.get("client"),
        server=d.get("server"),
    )


def _event(e: TimelineEvent) -> dict[str, Any]:
    return {"t": e.t, "kind": e.kind, "summary": e.summary, "peer": e.peer, "detail": e.detail}


def _machine(m: MachineResult) -> dict[str, Any]:
    return {
        "name": m.name,
        "mac": m.mac,
        "firmware": m.firmware,
        "segment": m.segment,
        "cluster": m.cluster,
        "driver": m.driver,
        "state": m.state,
        "reasons": list(m.reasons),
        "answered_by": list(m.answered_by),
        "ready_seconds": m.ready_seconds,
        "powered_at": m.powered_at,
        "timeline": [_event(e) for e in m.timeline],
        "console": _path(m.console),
    }


def to_plain(result: RunResult) -> dict[str, Any]:
    """The run as JSON-ready dicts and lists (what :func:`to_json` writes)."""
    return {
        "format": FORMAT,
        "scenario_name": result.scenario_name,
        "scenario_file": _path(result.scenario_file),
        "scenario": result.scenario,
        "tier": result.tier,
        "lab_id": result.lab_id,
        "started": result.started,
        "finished": result.finished,
        "versions": dict(result.versions),
        "machines": [_machine(m) for m in result.machines],
        "expectations": [
            {
                "kind": e.kind,
                "subject": e.subject,
                "description": e.description,
                "verdict": e.verdict,
                "detail": e.detail,
            }
            for e in result.expectations
        ],
        "findings": {
            seg: [finding_to_dict(f) for f in fs] for seg, fs in result.findings.items()
        },
        "pcaps": {seg: str(p) for seg, p in result.pcaps.items()},
        "logs": [str(p) for p in result.logs],
        "phases": [[name, start, end] for name, start, end in result.phases],
        "error": result.error,
        # what the judge read besides the pcaps: `flexlab report --rejudge` judges it again
        "observed": None if result.observed is None else observed_to_plain(result.observed),
        "verdict": result.verdict,
        "duration": result.duration,
    }


def to_json(result: RunResult) -> str:
    """Serialise a run losslessly (for everything reports read) as indented JSON."""
    return json.dumps(to_plain(result), indent=2, default=str, ensure_ascii=False)


def _req(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise RunFileError(
            f"{where} has no {key!r}: this is not a flexlab run.json "
            "(write one with harness.reports.serialize.to_json)"
        )
    return d[key]


def from_plain(d: dict[str, Any]) -> RunResult:
    """Rebuild a RunResult from the dicts :func:`to_plain` made."""
    if not isinstance(d, dict):
        raise RunFileError("run.json must hold a JSON object at the top level")
    try:
        machines = [
            MachineResult(
                name=str(_req(m, "name", "a machine")),
                mac=str(_req(m, "mac", "a machine")),
                firmware=str(m.get("firmware", "")),
                segment=str(m.get("segment", "")),
                cluster=m.get("cluster"),
                driver=str(m.get("driver", "")),
                state=str(m.get("state", "Unknown")),
                reasons=list(m.get("reasons", [])),
                answered_by=list(m.get("answered_by", [])),
                ready_seconds=m.get("ready_seconds"),
                powered_at=m.get("powered_at"),
                timeline=[
                    TimelineEvent(
                        t=float(e["t"]),
                        kind=str(e["kind"]),
                        summary=str(e.get("summary", "")),
                        peer=e.get("peer"),
                        detail=dict(e.get("detail") or {}),
                    )
                    for e in m.get("timeline", [])
                ],
                console=Path(m["console"]) if m.get("console") else None,
            )
            for m in d.get("machines", [])
        ]
        observed = d.get("observed")
        return RunResult(
            scenario_name=str(_req(d, "scenario_name", "run.json")),
            scenario_file=Path(d["scenario_file"]) if d.get("scenario_file") else None,
            scenario=dict(d.get("scenario") or {}),
            tier=str(d.get("tier", "")),
            lab_id=str(_req(d, "lab_id", "run.json")),
            started=float(_req(d, "started", "run.json")),
            finished=float(_req(d, "finished", "run.json")),
            versions={str(k): str(v) for k, v in (d.get("versions") or {}).items()},
            machines=machines,
            expectations=[
                ExpectationResult(
                    kind=e["kind"],
                    subject=str(e["subject"]),
                    description=str(e.get("description", "")),
                    verdict=e["verdict"],
                    detail=str(e.get("detail", "")),
                )
                for e in d.get("expectations", [])
            ],
            findings={
                str(seg): [finding_from_dict(f) for f in fs]
                for seg, fs in (d.get("findings") or {}).items()
            },
            pcaps={str(seg): Path(p) for seg, p in (d.get("pcaps") or {}).items()},
            logs=[Path(p) for p in d.get("logs", [])],
            phases=[(str(n), float(s), float(e)) for n, s, e in d.get("phases", [])],
            error=d.get("error"),
            observed=None if observed is None else observed_from_plain(
                observed, {m.name: m.timeline for m in machines}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RunFileError(
            f"run.json is malformed ({type(exc).__name__}: {exc}); regenerate it from the run"
        ) from exc


def from_json(text: str) -> RunResult:
    """Parse a run.json written by :func:`to_json` (or the lead's earlier asdict dump)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunFileError(f"run.json is not valid JSON: {exc}") from exc
    return from_plain(data)


def load(path: Path) -> RunResult:
    """Read and parse a run.json file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RunFileError(f"cannot read {path}: {exc.strerror}; check the path") from exc
    return from_json(text)
