"""Fixtures: the Control Plane tests' module-wide service (tests/unit/conftest.py's ``cp``
and ``admin``) started with the admin token their helpers use."""

from __future__ import annotations

import pytest
from cp_helpers import ADMIN


@pytest.fixture(scope="module")
def cp_admin_token() -> str:
    """The token of cp_helpers, so tests that build their own clients are admitted."""
    return ADMIN
