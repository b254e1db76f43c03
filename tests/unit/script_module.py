"""Load a repository file that is not an importable module (scripts/*.py with dashes in
their names, the top-level conftest.py) as a module, for its unit tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def load_script(relative: str, name: str) -> ModuleType:
    """The file ``REPO/relative`` run as module ``name``; registered in ``sys.modules``
    before it runs, because dataclasses look their module up there."""
    spec = importlib.util.spec_from_file_location(name, REPO / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
