"""flexlab's pytest plugin (entry point ``pytest11``): inert until a project asks for it.

Installing flexlab must not change anyone's pytest run, so on its own this module only
registers its (``flexlab``-prefixed) options and imports nothing but the standard library
and pytest. A project opts in with the ini option ``flexlab = true``; then it gets:

- tier markers ``unit``, ``sim``, ``vm`` and ``--flexlab-tier`` to select them;
- requirement markers ``needs_root``, ``needs_docker``, ``needs_libvirt``, ``needs_kvm``,
  ``real_lan`` and the parametrised ``needs_binary(*programs, how=...)``,
  ``needs_module(*modules, how=...)``, ``needs(condition, reason=...)``: a test whose
  requirement is missing is skipped with a reason that says how to get it — or, strict
  (``--flexlab-strict`` or ini ``flexlab_strict = true``, meant for CI), fails, so a green
  run means it ran. Only hardware CI has not got (``needs_kvm``, ``real_lan``) stays a skip.
  A requirement known only at run time goes through :func:`require`, same rule;
- reports: JUnit XML at ``<--flexlab-reports>/junit.xml`` and Allure results beside it,
  unless the run names its own; every lab's pcaps and logs attached to its test;
- fixtures ``flexlab_make_lab``, ``flexlab_lab``, ``flexlab_site_dhcp``
  (:mod:`harness.pytest_fixtures`, imported only now);
- scenario files named ``*.flexlab.yaml`` collected as tests.

A ``*.flexlab.yaml`` file is itself an ask: it is collected (with its tier's requirement
rule) in any project, but nothing else above happens without the ini option. The
environment variable ``CI`` changes nothing: strictness is the flag's alone.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from harness.lab import Topology

    DEFAULT_TOPOLOGY: Topology

SCENARIO_SUFFIX = ".flexlab.yaml"
"""Scenario files collected as tests; editors can map this suffix to the scenario schema."""
TIERS = ("unit", "sim", "vm")
REQUIREMENT_MARKERS = {
    "needs_root": "needs root (network namespaces): run pytest as root, e.g. `sudo make test`",
    "needs_docker": "needs a running Docker engine: `make setup` installs docker.io and "
    "starts dockerd",
    "needs_libvirt": "needs libvirtd: `make setup` installs libvirt-daemon-system and starts it",
    "needs_kvm": "needs a working KVM (a tiny guest must boot under -accel kvm); this host "
    "uses TCG",
    "real_lan": "needs a real LAN interface: pass --iface IF (site tier)",
}
HARDWARE_MARKERS = frozenset({"needs_kvm", "real_lan"})
"""Requirements CI hardware does not have: missing, they skip even when strict."""
PARAMETRISED_MARKERS = {
    "needs_binary": "needs_binary(*programs, how=...): programs on PATH; `how` says how to "
    "install them",
    "needs_module": "needs_module(*modules, how=...): importable Python modules; `how` says "
    "how to install them",
    "needs": "needs(condition, reason=...): a requirement checked at collection (condition "
    "true when met); reason says what is missing and how to get it",
}

_SESSIONS: list[pytest.Config] = []
"""The configs of the pytest sessions in this process, innermost last (pytester nests
one inside another): :func:`missing_requirement` asks the innermost whether it is strict."""
_MARKERS_KEY = pytest.StashKey[bool]()


def __getattr__(name: str) -> Any:
    """``DEFAULT_TOPOLOGY`` lives with the fixtures; importing it here would import
    pyroute2 in every pytest run of every project."""
    if name == "DEFAULT_TOPOLOGY":
        from harness.pytest_fixtures import DEFAULT_TOPOLOGY

        return DEFAULT_TOPOLOGY
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def pytest_addoption(parser: pytest.Parser) -> None:
    """flexlab's options: every one prefixed, so none can clash with a project's own."""
    parser.addini("flexlab", type="bool", default=False,
                  help="use flexlab's pytest plugin in this project (markers, fixtures, "
                  "reports, requirement rule); off: the plugin does nothing")
    parser.addini("flexlab_strict", type="bool", default=False,
                  help="a missing test requirement fails instead of skipping (CI)")
    group = parser.getgroup("flexlab", "flexlab (active with ini `flexlab = true`)")
    group.addoption("--flexlab-strict", action="store_true", default=False,
                    dest="flexlab_strict",
                    help="a missing test requirement fails instead of skipping (for CI: "
                    "a green run then means every test ran)")
    group.addoption("--flexlab-tier", action="append", choices=TIERS, dest="flexlab_tier",
                    help="run only tests of this tier (repeatable; default: all tiers)")
    group.addoption("--flexlab-keep-lab", action="store_true", dest="flexlab_keep_lab",
                    help="do not tear labs down after a test (debugging; clean with "
                    "`flexlab clean --lab ID`)")
    group.addoption("--flexlab-reports", default="reports", dest="flexlab_reports",
                    help="directory for pcaps, logs, Allure results and JUnit XML")
    group.addoption("--flexlab-boot-proxy-image", default=None, dest="boot_proxy_image",
                    help="Docker image of the Boot Proxy under test (default: flexlab's own)")
    group.addoption("--flexlab-boot-proxy-kind", choices=("container", "process"),
                    default=None, dest="boot_proxy_kind",
                    help="run scenarios' Boot Proxies as containers (the default) or as "
                    "plain processes (debugging)")


def enabled(config: pytest.Config) -> bool:
    """Did the project opt in (ini ``flexlab = true``)?"""
    return bool(config.getini("flexlab"))


def strict(config: pytest.Config) -> bool:
    """Does a missing requirement fail this run (``--flexlab-strict`` / ``flexlab_strict``)?"""
    return enabled(config) and bool(config.getoption("flexlab_strict")
                                    or config.getini("flexlab_strict"))


def _register_markers(config: pytest.Config) -> None:
    if config.stash.get(_MARKERS_KEY, False):
        return
    config.stash[_MARKERS_KEY] = True
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: flexlab {tier} tier")
    for marker, reason in (REQUIREMENT_MARKERS | PARAMETRISED_MARKERS).items():
        config.addinivalue_line("markers", f"{marker}: {reason}")
    config.addinivalue_line("markers", "topology(t): topology for the `flexlab_lab` fixture")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """In a project that opted in: markers, fixtures, and JUnit/Allure output under the
    reports directory unless the run names its own. Otherwise nothing."""
    _SESSIONS.append(config)
    if not enabled(config):
        return
    _register_markers(config)
    from harness import pytest_fixtures

    if not config.pluginmanager.is_registered(pytest_fixtures):
        config.pluginmanager.register(pytest_fixtures, "flexlab-fixtures")
    reports = Path(config.getoption("flexlab_reports"))
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath \
            and not hasattr(config, "workerinput"):
        config.option.xmlpath = str(reports / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(reports / "allure-results")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Forget this session (a pytester session ends inside the outer one)."""
    if config in _SESSIONS:
        _SESSIONS.remove(config)


def is_flexlab_scenario(path: Path) -> bool:
    """A scenario file this plugin collects anywhere: ``*.flexlab.yaml``."""
    return path.name.endswith(SCENARIO_SUFFIX) and len(path.name) > len(SCENARIO_SUFFIX)


def collect_scenario(file_path: Path, parent: pytest.Collector) -> pytest.Collector:
    """One scenario file as a test (markers registered first: its item carries its tier)."""
    from harness.builder.pytest_items import ScenarioFile

    _register_markers(parent.config)
    return ScenarioFile.from_parent(parent, path=file_path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect ``*.flexlab.yaml`` scenario files; nothing else."""
    if is_flexlab_scenario(file_path):
        return collect_scenario(file_path, parent)
    return None


def _ours(item: pytest.Item) -> bool:
    """Is this item flexlab's business: the project opted in, or it is a flexlab scenario?"""
    return enabled(item.config) or is_flexlab_scenario(Path(item.path))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply --flexlab-tier, and give sim/vm tests their implied requirements."""
    tiers = config.getoption("flexlab_tier")
    selected, deselected = [], []
    for item in items:
        if not _ours(item):
            selected.append(item)
            continue
        item_tiers = [t for t in TIERS if item.get_closest_marker(t)]
        if "sim" in item_tiers or "vm" in item_tiers:
            item.add_marker(pytest.mark.needs_root)
        if "vm" in item_tiers:
            item.add_marker(pytest.mark.needs_libvirt)
        if tiers and not set(item_tiers) & set(tiers):
            deselected.append(item)
        else:
            selected.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@functools.cache
def _unix_socket_answers(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(2)
        sock.connect(path)
        return True
    except OSError:
        return False
    finally:
        sock.close()


@functools.cache
def _kvm_works() -> bool:
    """KVM counts only if a tiny guest (the node image) really boots under it."""
    from harness.machines.vm.accel import Accel, choose_accel
    from nodeimage.build import latest_built

    image = latest_built()
    if image is None:
        return False
    decision = choose_accel(image.kernel, image.initrd, measure_tcg=False)
    return decision.accel is Accel.KVM


DOCKER_PING_TIMEOUT = 3.0
"""Seconds a Docker engine has to answer the requirement check's ping: a socket that
accepts but never answers must not hang collection."""


def docker_problem(timeout: float = DOCKER_PING_TIMEOUT) -> str | None:
    """Why no Docker engine answers here, or None when one does. The engine is pinged
    through the docker SDK as the harness will reach it (``DOCKER_HOST``, else the local
    socket): a ``docker`` program on PATH or a socket file says nothing about a daemon
    that is stopped, wedged or someone else's."""
    from harness.lab.docker_engine import docker_endpoint  # lazy: harness.lab imports pyroute2

    where = docker_endpoint()
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed: pip install docker"
    try:
        client = docker.DockerClient(base_url=where, timeout=max(1, round(timeout)),
                                     version="auto")
    except Exception as exc:  # the SDK raises its own errors and the transport's
        return f"no Docker engine answers at {where}: {exc}"
    try:
        client.ping()
    except Exception as exc:
        return f"the Docker engine at {where} does not answer a ping: {exc}"
    finally:
        client.close()
    return None


_docker_problem_here = functools.cache(docker_problem)


REQUIREMENT_CHECKS: dict[str, Callable[[], bool]] = {
    "needs_root": lambda: os.geteuid() == 0,
    "needs_docker": lambda: _docker_problem_here() is None,
    "needs_libvirt": lambda: _unix_socket_answers("/run/libvirt/libvirt-sock"),
    "needs_kvm": _kvm_works,
    "real_lan": lambda: False,
}


REQUIREMENT_DETAILS: dict[str, Callable[[], str | None]] = {
    "needs_docker": _docker_problem_here,
}
"""What exactly is missing, for requirements that can say more than their marker's text."""


def strict_now() -> bool:
    """Is the pytest session running in this process strict? False outside pytest."""
    return bool(_SESSIONS) and strict(_SESSIONS[-1])


def missing_requirement(reason: str, *, hardware: bool = False) -> NoReturn:
    """Stop the current test for a requirement this host lacks: a skip that says how to get
    it, or in a strict run (CI) a failure — a CI host that skips would report green for a
    test that never ran. ``hardware=True`` is for what CI hardware has not got (KVM, a
    real LAN): a skip everywhere."""
    if strict_now() and not hardware:
        pytest.fail(f"CI host is missing a requirement: {reason}", pytrace=False)
    pytest.skip(reason)


def require(condition: object, reason: str) -> None:
    """The run-time form of the ``needs_*`` markers, for a requirement a test only learns
    while it runs (an image not built yet, a daemon that does not answer): nothing when
    ``condition`` holds, else :func:`missing_requirement` with ``reason``."""
    if not condition:
        missing_requirement(reason)


def _module_missing(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is None
    except (ImportError, ValueError):  # a parent package is missing or broken
        return True


def _how(marker: pytest.Mark) -> str:
    how = marker.kwargs.get("how")
    if not how:
        raise pytest.UsageError(f"@pytest.mark.{marker.name}{marker.args} needs how=... "
                                "(how to install what is missing)")
    return str(how)


def parametrised_requirements(item: pytest.Item) -> list[str]:
    """Reasons for every ``needs_binary`` / ``needs_module`` / ``needs`` marker of ``item``
    that this host does not meet (empty when all are met)."""
    missing: list[str] = []
    for mark in item.iter_markers("needs_binary"):
        absent = [p for p in mark.args if shutil.which(p) is None]
        if absent:
            missing.append(f"needs {', '.join(absent)} on PATH: {_how(mark)}")
    for mark in item.iter_markers("needs_module"):
        absent = [m for m in mark.args if _module_missing(m)]
        if absent:
            missing.append(f"needs Python module {', '.join(absent)}: {_how(mark)}")
    for mark in item.iter_markers("needs"):
        if not mark.args or "reason" not in mark.kwargs:
            raise pytest.UsageError("@pytest.mark.needs(condition, reason=...) takes both")
        if not mark.args[0]:
            missing.append(str(mark.kwargs["reason"]))
    return missing


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, strict, fail) a flexlab test whose requirement this host lacks."""
    if not _ours(item):
        return
    for marker, check in REQUIREMENT_CHECKS.items():
        if item.get_closest_marker(marker) is None or check():
            continue
        detail = REQUIREMENT_DETAILS[marker]() if marker in REQUIREMENT_DETAILS else None
        missing_requirement(REQUIREMENT_MARKERS[marker] + (f" ({detail})" if detail else ""),
                            hardware=marker in HARDWARE_MARKERS)
    missing = parametrised_requirements(item)
    if missing:
        missing_requirement("; ".join(missing))

