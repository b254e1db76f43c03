"""Fixtures the certify unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sample_bundle import FILES

from harness.certify.bundle import write_bundle


@pytest.fixture
def key() -> Ed25519PrivateKey:
    """A fresh vendor signing key (Ed25519, what flexlab signs bundles with)."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def bundle(tmp_path: Path, key: Ed25519PrivateKey) -> Path:
    """``b.tar.gz`` in the test's folder: the sample files, signed with :func:`key`."""
    path = tmp_path / "b.tar.gz"
    write_bundle(path, FILES, key)
    return path
