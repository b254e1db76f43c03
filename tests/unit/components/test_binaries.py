"""require_binary: a found daemon's path, or one DependencyError naming the package."""

from __future__ import annotations

import pytest

from harness.components.binaries import require_binary
from harness.errors import DependencyError

pytestmark = pytest.mark.unit


def test_a_binary_on_path_is_found() -> None:
    assert require_binary("sh", "dash").endswith("/sh")


def test_a_missing_binary_names_its_package() -> None:
    with pytest.raises(DependencyError, match="no-such-daemon not found: apt-get install pkg-x"):
        require_binary("no-such-daemon", "pkg-x")
