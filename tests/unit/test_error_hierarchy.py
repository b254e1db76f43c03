"""Every exception the harness defines is a FlexlabError (issue 14, item 6).

``flexlab`` prints a FlexlabError as one line and exits 1, and the scenario runner
reports one as the run's error by its class; an exception outside the hierarchy is a
traceback or an "unexpected" error instead. This test imports every module under
``harness/`` (and ``bench/``, which runs on the harness) and checks every exception
class they define, so a new package cannot start a second hierarchy unnoticed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import bench
import harness
from harness.errors import FlexlabError

pytestmark = pytest.mark.unit

# qualified class name -> why it must stay outside FlexlabError
ALLOWED: dict[str, str] = {
    "harness.builder.pytest_items.ScenarioFailed":
        "not a harness error but a test outcome: pytest's collector raises it so that "
        "repr_failure renders the scenario's report; the harness never raises it to a user",
    "harness.signals.Interrupted":
        "not an error but SIGINT/SIGTERM turned into KeyboardInterrupt, so it unwinds past "
        "every `except Exception` to the clean-up; the CLI turns it into exit 130",
}


def _modules(package: ModuleType) -> Iterator[ModuleType]:
    """Every module in ``package``'s directory tree, imported.

    Files, not ``pkgutil.walk_packages``: a directory without ``__init__.py`` (a namespace
    package, such as ``harness/sitecheck``) is not walked by pkgutil. ``__main__`` modules
    are skipped: importing one runs its command.
    """
    root = Path(next(iter(package.__path__)))
    for path in sorted(root.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield importlib.import_module(name)


def exception_classes(*packages: ModuleType) -> dict[str, type[BaseException]]:
    """Every exception class defined (not merely imported) in ``packages``' modules."""
    found: dict[str, type[BaseException]] = {}
    for package in packages:
        for module in _modules(package):
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                    found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def test_the_walk_finds_the_packages_own_errors() -> None:
    """A walk that found nothing would make the next test pass vacuously."""
    found = exception_classes(harness, bench)
    for name in ("harness.capture.errors.CaptureError", "harness.rules.errors.RulesError",
                 "harness.machines.vm.errors.VmError", "bench.errors.BenchError",
                 "harness.sitecheck.model.SiteCheckError",
                 "harness.errors.FlexlabError"):
        assert name in found
    assert len(found) > 30


def test_every_harness_exception_is_a_flexlab_error() -> None:
    outside = sorted(name for name, cls in exception_classes(harness, bench).items()
                     if not issubclass(cls, FlexlabError) and name not in ALLOWED)
    assert not outside, ("derive these from FlexlabError (or a package base that does), or "
                         f"allow-list them with the reason: {outside}")


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_every_allowed_exception_still_exists_outside(name: str) -> None:
    """A stale allow-list entry would let a later class of that name slip through."""
    cls = exception_classes(harness, bench).get(name)
    assert cls is not None, f"{name} is gone: drop its ALLOWED entry"
    assert not issubclass(cls, FlexlabError), f"{name} is a FlexlabError now: drop its entry"
