#!/usr/bin/env python3
"""Merge the reports of CI shards into one: JUnit XML and Allure results.

Each shard (``FLEXLAB_TEST_SHARD=i/n scripts/run-tests.sh``) writes its own
``junit*.xml`` and ``allure-results/``; a CI job downloads them all under one
directory and runs::

    python scripts/merge-reports.py SHARDS_DIR OUT_DIR

OUT_DIR then holds ``junit.xml`` (every test case of every shard, counts summed)
and ``allure-results/`` (every shard's result files; Allure names them by UUID, so
copying them side by side is the merge; ``allure generate OUT_DIR/allure-results``
makes the one report). A test case reported by two shards means the split overlapped:
that is an error, as is a shard directory with no JUnit file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

COUNTS = ("tests", "failures", "errors", "skipped")


def suites_of(path: Path) -> list[ET.Element]:
    """The <testsuite> elements of one JUnit file (pytest writes <testsuites><testsuite>)."""
    root = ET.parse(path).getroot()
    return [root] if root.tag == "testsuite" else list(root.iter("testsuite"))


def merge_junit(files: list[Path]) -> tuple[ET.Element, list[str]]:
    """One <testsuites> with every case of ``files`` under one <testsuite>, and the ids of
    cases that appear more than once."""
    merged = ET.Element("testsuite", name="pytest")
    totals = dict.fromkeys(COUNTS, 0)
    time = 0.0
    seen: dict[str, int] = {}
    for path in files:
        for suite in suites_of(path):
            for key in COUNTS:
                totals[key] += int(suite.get(key, 0))
            time = max(time, float(suite.get("time", 0)))  # shards run side by side
            for case in suite.iter("testcase"):
                case_id = f"{case.get('classname')}::{case.get('name')}"
                seen[case_id] = seen.get(case_id, 0) + 1
                merged.append(case)
    for key, value in totals.items():
        merged.set(key, str(value))
    merged.set("time", f"{time:.3f}")
    root = ET.Element("testsuites")
    root.append(merged)
    return root, sorted(k for k, n in seen.items() if n > 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shards", type=Path, help="directory holding every shard's reports")
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    junits = sorted(p for p in args.shards.rglob("junit*.xml") if args.out not in p.parents)
    if not junits:
        print(f"merge-reports: no junit*.xml under {args.shards}", file=sys.stderr)
        return 1
    root, twice = merge_junit(junits)
    args.out.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(args.out / "junit.xml", encoding="utf-8", xml_declaration=True)
    allure_out = args.out / "allure-results"
    allure_out.mkdir(exist_ok=True)
    copied = 0
    for results in args.shards.rglob("allure-results"):
        if results == allure_out or not results.is_dir():
            continue
        for item in results.iterdir():
            if item.is_file():
                shutil.copy2(item, allure_out / item.name)
                copied += 1
    suite = root[0]
    print(f"merge-reports: {len(junits)} JUnit files, {suite.get('tests')} tests "
          f"({suite.get('failures')} failed, {suite.get('errors')} errors, "
          f"{suite.get('skipped')} skipped); {copied} Allure files -> {args.out}")
    if twice:
        print(f"merge-reports: {len(twice)} test(s) ran in more than one shard, e.g. "
              f"{twice[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
