"""Kernel package resolution from apt's answers (apt itself is faked)."""

from __future__ import annotations

import pytest

from nodeimage import packages
from nodeimage.errors import PackageError

pytestmark = pytest.mark.unit

DEPENDS = """linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
"""
POLICY = """busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
"""


def test_kernel_package_follows_meta_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: DEPENDS)
    assert packages.resolve_kernel_package() == "linux-image-6.1.0-56-amd64"


def test_non_61_kernel_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = "linux-image-amd64\n  Depends: linux-image-6.12.9-amd64\n"
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: answer)
    with pytest.raises(PackageError, match="--kernel-package"):
        packages.resolve_kernel_package()


def test_candidate_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: POLICY)
    assert packages.candidate_version("busybox-static") == "1:1.35.0-4+deb12u1+b1"


def test_no_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = POLICY.replace("1:1.35.0-4+deb12u1+b1", "(none)")
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: answer)
    with pytest.raises(PackageError, match="apt-get update"):
        packages.candidate_version("busybox-static")
