"""The plugin module itself: light to import, every option prefixed, the suffix rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness import pytest_plugin

pytestmark = pytest.mark.unit


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = ("import sys, harness.pytest_plugin\n"
            "heavy = ('pyroute2', 'scapy', 'docker', 'fastapi', 'yaml', 'pydantic',"
            " 'harness.lab', 'harness.builder', 'harness.pytest_fixtures')\n"
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


class _Recorder:
    """Stands in for pytest's parser and option group: records what is registered."""

    def __init__(self) -> None:
        self.options: list[str] = []
        self.inis: list[str] = []

    def getgroup(self, *_: Any, **__: Any) -> _Recorder:
        return self

    def addoption(self, *names: str, **_: Any) -> None:
        self.options.extend(names)

    def addini(self, name: str, *_: Any, **__: Any) -> None:
        self.inis.append(name)


def test_every_option_and_ini_name_is_prefixed() -> None:
    """An unprefixed option (say --tier) would clash with a project's own and break its
    run just by flexlab being installed."""
    rec = _Recorder()
    pytest_plugin.pytest_addoption(rec)  # type: ignore[arg-type]
    assert rec.options and all(o.startswith("--flexlab-") for o in rec.options), rec.options
    assert set(rec.inis) == {"flexlab", "flexlab_strict"}


@pytest.mark.parametrize(("name", "ours"), [
    ("lan.flexlab.yaml", True),
    ("a.b.flexlab.yaml", True),
    (".flexlab.yaml", False),
    ("lan.yaml", False),
    ("lan.flexlab.yml", False),
    ("flexlab.yaml", False),
])
def test_scenario_suffix(name: str, ours: bool) -> None:
    assert pytest_plugin.is_flexlab_scenario(Path("checks") / name) is ours


def test_default_topology_is_served_lazily() -> None:
    from harness.pytest_fixtures import DEFAULT_TOPOLOGY

    assert pytest_plugin.DEFAULT_TOPOLOGY is DEFAULT_TOPOLOGY
    with pytest.raises(AttributeError):
        pytest_plugin.no_such_name  # noqa: B018


def test_outside_a_strict_session_a_missing_requirement_skips(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest_plugin, "_SESSIONS", [])
    with pytest.raises(pytest.skip.Exception, match="how to get it"):
        pytest_plugin.require(False, "how to get it")
