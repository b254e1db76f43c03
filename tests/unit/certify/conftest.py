"""Fixtures the certify unit tests share."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """A fresh vendor signing key (Ed25519, what flexlab signs bundles with)."""
    return Ed25519PrivateKey.generate()
