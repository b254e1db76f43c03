"""flexlab's pytest plugin (entry point ``pytest11``): markers, requirements, fixtures, reports.

- Tier markers ``unit``, ``sim``, ``vm`` and ``--tier`` to select them.
- Requirement markers ``needs_root``, ``needs_docker``, ``needs_libvirt``,
  ``needs_kvm``, ``real_lan``, and the parametrised ``needs_binary(*programs,
  how=...)``, ``needs_module(*modules, how=...)`` and ``needs(condition,
  reason=...)``: a test whose requirement is missing is skipped with a reason
  that says how to get it — except under CI (``CI=true``), where a missing
  requirement fails the test, so a green CI means it ran. Only hardware CI
  does not have (``needs_kvm``, ``real_lan``) stays a skip there. A
  requirement known only at run time (an image not built yet) goes through
  :func:`require`, which applies the same rule. Tests never call
  ``pytest.skip``/``skipif``/``importorskip`` themselves.
- Reports by default: JUnit XML at ``reports/junit.xml`` and Allure results
  in ``reports/allure-results``; every lab's pcaps and logs are attached to
  the test that made it.
- Fixtures: ``make_lab`` (build any topology), ``lab`` (the default one:
  segment ``lan``, hosts ``dhcp`` and ``client``), ``site_dhcp``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from harness.lab import Host, HostLink, Lab, Segment, Topology

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
"""Requirements CI hardware does not have: missing, they skip even under CI."""
PARAMETRISED_MARKERS = {
    "needs_binary": "needs_binary(*programs, how=...): programs on PATH; `how` says how to "
    "install them",
    "needs_module": "needs_module(*modules, how=...): importable Python modules; `how` says "
    "how to install them",
    "needs": "needs(condition, reason=...): a requirement checked at collection (condition "
    "true when met); reason says what is missing and how to get it",
}
DEFAULT_TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(Host("dhcp", (HostLink("lan"),)), Host("client", (HostLink("lan", address=None),))),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """flexlab's command-line options."""
    group = parser.getgroup("flexlab")
    group.addoption("--tier", action="append", choices=TIERS,
                    help="run only tests of this tier (repeatable; default: all tiers)")
    group.addoption("--keep-lab", action="store_true",
                    help="do not tear labs down after a test (debugging; clean with "
                    "`flexlab clean --all`)")
    group.addoption("--flexlab-reports", default="reports",
                    help="directory for pcaps, logs, Allure results and JUnit XML")
    group.addoption("--boot-proxy-image", default=None,
                    help="Docker image of the Boot Proxy under test (default: flexlab's own)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register markers and point JUnit/Allure output at reports/ unless told otherwise."""
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: flexlab {tier} tier")
    for marker, reason in (REQUIREMENT_MARKERS | PARAMETRISED_MARKERS).items():
        config.addinivalue_line("markers", f"{marker}: {reason}")
    config.addinivalue_line("markers", "topology(t): topology for the `lab` fixture")
    reports = Path(config.getoption("flexlab_reports"))
    if hasattr(config.option, "xmlpath") and not config.option.xmlpath \
            and not hasattr(config, "workerinput"):
        config.option.xmlpath = str(reports / "junit.xml")
    if hasattr(config.option, "allure_report_dir") and not config.option.allure_report_dir:
        config.option.allure_report_dir = str(reports / "allure-results")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect scenarios/**/*.yaml as scenario tests."""
    from harness.builder.pytest_items import ScenarioFile, is_scenario_file

    if is_scenario_file(file_path, Path(parent.config.rootpath)):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply --tier, and give sim/vm tests their implied requirements."""
    tiers = config.getoption("tier")
    selected, deselected = [], []
    for item in items:
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


REQUIREMENT_CHECKS: dict[str, Callable[[], bool]] = {
    "needs_root": lambda: os.geteuid() == 0,
    "needs_docker": lambda: shutil.which("docker") is not None
    and _unix_socket_answers("/var/run/docker.sock"),
    "needs_libvirt": lambda: _unix_socket_answers("/run/libvirt/libvirt-sock"),
    "needs_kvm": _kvm_works,
    "real_lan": lambda: False,
}


def in_ci() -> bool:
    """True under CI (``CI=1|true|yes``), where a missing requirement is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_requirement(reason: str, *, hardware: bool = False) -> NoReturn:
    """Stop the current test for a requirement this host lacks: a skip that says how to get
    it, or under CI a failure (a CI host that skips would report green for a test that never
    ran). ``hardware=True`` is for what CI hardware has not got (KVM, a real LAN): a skip
    everywhere."""
    if in_ci() and not hardware:
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
    """Skip (or, under CI, fail) a test whose requirement this host lacks."""
    for marker, check in REQUIREMENT_CHECKS.items():
        if item.get_closest_marker(marker) is None or check():
            continue
        missing_requirement(REQUIREMENT_MARKERS[marker], hardware=marker in HARDWARE_MARKERS)
    missing = parametrised_requirements(item)
    if missing:
        missing_requirement("; ".join(missing))


def attach_artifacts(paths: list[Path]) -> None:
    """Attach files (pcaps, logs, consoles) to the current Allure test result."""
    try:
        import allure
    except ImportError:
        return
    for path in paths:
        if path.is_file() and path.stat().st_size > 0:
            allure.attach.file(str(path), name=path.name, extension=path.suffix.lstrip("."))


@pytest.fixture
def make_lab(request: pytest.FixtureRequest) -> Iterator[Callable[[Topology], Lab]]:
    """Build labs from topologies; each is torn down (and its evidence attached) after the test."""
    labs: list[Lab] = []
    reports = Path(request.config.getoption("flexlab_reports")) / "labs"
    keep = request.config.getoption("keep_lab")

    def make(topology: Topology) -> Lab:
        lab = Lab(topology, reports_dir=reports)
        lab.build()
        labs.append(lab)
        return lab

    try:
        yield make
    finally:
        errors = []
        for lab in reversed(labs):
            if keep:
                print(f"--keep-lab: lab {lab.id} left running; `flexlab clean --lab {lab.id}`")
                continue
            try:
                lab.teardown()
            except Exception as exc:
                errors.append(exc)
            attach_artifacts(lab.artifacts())
        if errors:
            raise errors[0]


@pytest.fixture
def lab(request: pytest.FixtureRequest, make_lab: Callable[[Topology], Lab]) -> Lab:
    """A built lab: the topology of ``@pytest.mark.topology(t)`` or the default one."""
    marker = request.node.get_closest_marker("topology")
    topology = marker.args[0] if marker else DEFAULT_TOPOLOGY
    return make_lab(topology)


@pytest.fixture
def site_dhcp(lab: Lab) -> Iterator[object]:
    """The site's DHCP server (dnsmasq) on host ``dhcp`` serving segment ``lan``, ready."""
    from harness.components.dnsmasq import SiteDhcp

    server = SiteDhcp(lab, "dhcp", "lan")
    with server:
        yield server
