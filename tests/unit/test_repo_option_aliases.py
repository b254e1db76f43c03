"""This repository's short option spellings (conftest.py) are true aliases of the
plugin's ``--flexlab-*`` options: same destination, same choices, same effect.

An alias with another ``dest`` would be accepted and then silently ignored, which is
how ``--boot-proxy-kind`` could have been missing without anyone noticing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from script_module import load_script

from harness import pytest_plugin

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def _repo_conftest() -> Any:
    """The repository's top-level conftest.py (``import conftest`` finds the nearest)."""
    return load_script("conftest.py", "repo_conftest")


class _Options:
    """Stands in for pytest's parser: keeps each option's names and keyword arguments, and
    the options of each group apart (``groups``)."""

    def __init__(self) -> None:
        self.by_name: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, _Options] = {}

    def getgroup(self, name: str, *_: Any, **__: Any) -> _Options:
        return self.groups.setdefault(name, _Options())

    def addoption(self, *names: str, **kwargs: Any) -> None:
        for name in names:
            self.by_name[name] = kwargs

    def addini(self, *_: Any, **__: Any) -> None:
        pass


def test_every_short_option_matches_its_plugin_option() -> None:
    parser, plugin_parser = _Options(), _Options()
    _repo_conftest().pytest_addoption(parser)
    pytest_plugin.pytest_addoption(plugin_parser)  # type: ignore[arg-type]
    # the repository's own options (--suite-order) live in a group of their own
    ours, plugin = parser.groups["flexlab"], plugin_parser.groups["flexlab"]
    assert "--boot-proxy-kind" in ours.by_name
    for name, kwargs in ours.by_name.items():
        full = plugin.by_name[f"--flexlab-{name.removeprefix('--')}"]
        for key in ("dest", "choices", "action", "default"):
            assert kwargs.get(key) == full.get(key), (name, key)


def _collected(*args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-m", "needs_docker", *args,
                          "scenarios/smoke.yaml"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    return run.stdout + run.stderr


def test_boot_proxy_kind_alias_reaches_the_scenario_items() -> None:
    """By default smoke's Boot Proxy is a container, so its item needs Docker; with
    ``--boot-proxy-kind process`` (or the long spelling) it runs as a process and does
    not."""
    assert "1 test collected" in _collected()
    for spelling in ("--boot-proxy-kind", "--flexlab-boot-proxy-kind"):
        out = _collected(spelling, "process")
        assert "no tests collected (1 deselected)" in out, out
    assert "invalid choice" in _collected("--boot-proxy-kind", "vm")
