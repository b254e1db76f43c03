#!/usr/bin/env python3
"""Storms of several code trees or settings, interleaved on one host: an A/B that can tell.

    .venv/bin/python bench/storm_ab.py --per-kind 500 --runs 3 \\
        --config before=/tmp/tree-without-the-change --config after=. \\
        --config after-2-processes=.:FLEXLAB_FLEET_PROCESSES=2

A storm's wall time moves with the host's load from hour to hour (docs/BENCH-STORM.md),
so configurations measured in different hours cannot be compared. This runs one storm of
each configuration in turn, ``--runs`` rounds, each a fresh ``bench/storm.py --runs 1``
of that tree (its own checkout and .venv) with that configuration's environment, and
writes every run and each configuration's spread (all-Ready time, p50, the harness's
CPU in the machines phase, DHCP retransmissions, verdicts) to one results file.
A configuration is ``NAME=TREE[:VAR=VALUE,...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(REPO))

from bench.child import run_child  # noqa: E402
from bench.provenance import commit, loadavg, spread, stamp  # noqa: E402
from bench.service_cpu import ServiceCpu, spread_by_service  # noqa: E402

__all__ = ["Config", "ab_document", "add_ab_arguments", "finish_ab", "in_turn", "main",
           "parse_config",
           "parse_configs", "run_results", "summarise"]


@dataclass(frozen=True)
class Config:
    """One side of the comparison: a name, a checkout, environment settings."""

    name: str
    tree: Path
    env: dict[str, str] = field(default_factory=dict)


def parse_config(text: str) -> Config:
    """``NAME=TREE[:VAR=VALUE,...]`` -> Config; ValueError with the reason otherwise."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"{text!r}: write NAME=TREE or NAME=TREE:VAR=VALUE,...")
    tree, _, settings = rest.partition(":")
    env: dict[str, str] = {}
    for item in filter(None, settings.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"{text!r}: {item!r} is not VAR=VALUE")
        env[key] = value
    return Config(name, Path(tree), env)


def parse_configs(parser: argparse.ArgumentParser, texts: list[str]) -> list[Config]:
    """Every ``--config`` parsed; a bad one, a name used twice or a tree without a .venv
    ends the program through ``parser.error`` with the reason."""
    try:
        configs = [parse_config(c) for c in texts]
    except ValueError as exc:
        parser.error(str(exc))
    if len({c.name for c in configs}) != len(configs):
        parser.error("two configurations share a name")
    for c in configs:
        if not (c.tree / ".venv" / "bin" / "python").is_file():
            parser.error(f"{c.name}: {c.tree} has no .venv (run make setup there)")
    return configs


def add_ab_arguments(parser: argparse.ArgumentParser, runs: int = 3) -> None:
    """The options every A/B script takes: ``--config`` (repeated), ``--runs``,
    ``--results`` and ``--why``."""
    parser.add_argument("--config", action="append", required=True, metavar="NAME=TREE[:ENV]")
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--why", default="", help="the question, kept in the file")


def ab_document(script: str, argv: list[str] | None, args: argparse.Namespace,
                configs: list[Config]) -> dict[str, Any]:
    """An A/B results file's head: provenance (the command as given), the question, and
    each configuration's commit, files changed and environment."""
    doc = stamp(f"python bench/{script} " + " ".join(argv if argv is not None
                                                     else sys.argv[1:]), runs=args.runs)
    doc["why"] = args.why
    doc["configs"] = {c.name: {"commit": commit(c.tree),
                               "changed_files": _git(c.tree, "status", "--short").splitlines(),
                               "env": c.env} for c in configs}
    return doc


def in_turn(configs: list[Config], rounds: int, one: Callable[[Config], dict[str, Any]],
            say: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """One run of each configuration per round, in turn, ``rounds`` rounds: the load of
    the hour falls on every configuration alike. Each record gets its round; ``say``
    gives the line printed after it."""
    runs: list[dict[str, Any]] = []
    for round_no in range(1, rounds + 1):
        for c in configs:
            record = one(c) | {"round": round_no}
            runs.append(record)
            print(f"round {round_no} {c.name}: {say(record)}", flush=True)
    return runs


def finish_ab(doc: dict[str, Any], runs: list[dict[str, Any]], configs: list[Config],
              summarise_runs: Callable[[list[dict[str, Any]]], dict[str, Any]],
              results: Path) -> None:
    """Every run and each configuration's summary (``doc["summary"]``, by configuration
    name) into ``doc``, written to ``results``."""
    doc["runs_detail"] = runs
    doc["summary"] = {c.name: summarise_runs([r for r in runs if r["config"] == c.name])
                      for c in configs}
    doc["loadavg_at_end"] = loadavg()
    results.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")


def _git(tree: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip()


def run_results(config: Config, script: str, args: list[str],
                results_flag: str = "--results") -> tuple[dict[str, Any], int]:
    """Run ``bench/<script>`` of ``config``'s tree with its venv and environment, asking it
    for its results (``results_flag``) in a temporary file; that file's document and the
    exit status. A script that writes no results file ends the program with its output's
    tail."""
    tree = config.tree.resolve()
    with tempfile.TemporaryDirectory(prefix="flexlab-ab-") as tmp:
        out = Path(tmp) / "results.json"
        argv = [str(tree / ".venv" / "bin" / "python"), str(tree / "bench" / script), *args,
                results_flag, str(out)]
        proc = run_child(argv, cwd=tree, env={**os.environ, **config.env})
        if not out.is_file():
            raise SystemExit(f"{config.name}: {script} wrote nothing (exit {proc.returncode})"
                             f":\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
        return json.loads(out.read_text()), proc.returncode


def _one(config: Config, per_kind: int, timeout: float | None) -> dict[str, Any]:
    """One storm of ``config``: its storm.py, its venv, its environment; the run's figures."""
    # sampled here, around the config's storm.py, so that a tree without the sampler
    # is measured alike
    with ServiceCpu() as services:
        doc, rc = run_results(config, "storm.py", [
            "--per-kind", str(per_kind), "--runs", "1",
            *(["--timeout", str(timeout)] if timeout else [])])
    return {"config": config.name, "exit": rc, **doc["runs"][0],
            "services_cpu_s": services.seconds()}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Spread of a configuration's runs (a run not all Ready counts apart, never as a time)."""
    times = [r["time_to_all_ready_s"] for r in runs if r.get("time_to_all_ready_s") is not None]
    cpu = [r["harness_cpu_s"]["machines"] for r in runs
           if "machines" in r.get("harness_cpu_s", {})]
    return {"time_to_all_ready_s": spread(times),
            "runs_not_all_ready": sum(1 for r in runs if r.get("time_to_all_ready_s") is None),
            "ready_p50_s": spread([r["ready_s"]["p50"] for r in runs
                                   if r.get("ready_s", {}).get("p50") is not None], 3),
            "harness_cpu_machines_phase_s": spread(cpu),
            "dhcp_retransmissions": spread([r.get("dhcp_retransmissions", 0) for r in runs], 0),
            "services_cpu_s": spread_by_service(runs),
            "verdicts": [r.get("verdict") for r in runs]}


def main(argv: list[str] | None = None) -> int:
    """Run the configurations in turn, ``--runs`` rounds; write and print the spreads."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_ab_arguments(parser)
    parser.add_argument("--per-kind", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=None)
    args = parser.parse_args(argv)
    configs = parse_configs(parser, args.config)
    doc = ab_document("storm_ab.py", argv, args, configs)
    runs: list[dict[str, Any]] = []
    for round_ in range(1, args.runs + 1):
        for c in configs:
            run = _one(c, args.per_kind, args.timeout)
            run["round"] = round_
            runs.append(run)
            print(f"round {round_} {c.name:24s} all Ready {run.get('time_to_all_ready_s')} s "
                  f"({run.get('verdict')}, load {run.get('loadavg_before')})", flush=True)
    doc["loadavg_at_end"] = loadavg()
    doc["summary"] = {c.name: summarise([r for r in runs if r["config"] == c.name])
                      for c in configs}
    doc["runs"] = [{k: v for k, v in r.items() if k != "versions"} for r in runs]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(doc, indent=2) + "\n")
    for name, s in doc["summary"].items():
        t = s["time_to_all_ready_s"]
        print(f"{name:24s} all Ready {t['median']} s ({t['min']}-{t['max']}), "
              f"{s['runs_not_all_ready']} runs not all Ready, verdicts {s['verdicts']}")
    return 0 if all(v == "pass" for s in doc["summary"].values() for v in s["verdicts"]) else 1


if __name__ == "__main__":
    sys.exit(main())
