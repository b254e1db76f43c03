"""Path confinement of the boot root (CONFORMANCE TFTP-9)."""

import os
from pathlib import Path

import pytest

from bootproxy.tftp.errors import PathError
from bootproxy.tftp.paths import resolve_in_root

pytestmark = pytest.mark.unit


@pytest.fixture
def root(tmp_path: Path) -> Path:
    boot = tmp_path / "boot"
    (boot / "efi").mkdir(parents=True)
    (boot / "ipxe.efi").write_bytes(b"efi")
    (boot / "efi" / "grub.efi").write_bytes(b"grub")
    (tmp_path / "secret").write_text("outside")
    os.symlink(tmp_path / "secret", boot / "escape")
    os.symlink(boot / "ipxe.efi", boot / "inside-link")
    return boot


@pytest.mark.parametrize("name,expected", [
    ("ipxe.efi", "ipxe.efi"), ("efi/grub.efi", "efi/grub.efi"), ("efi\\grub.efi", "efi/grub.efi"),
    ("./ipxe.efi", "ipxe.efi"), ("efi//grub.efi", "efi/grub.efi"), ("inside-link", "ipxe.efi"),
])
def test_names_inside_root_resolve(root: Path, name: str, expected: str) -> None:
    assert resolve_in_root(root, name) == (root / expected).resolve()


@pytest.mark.parametrize("name", [
    "../secret", "efi/../../secret", "/etc/passwd", "\\etc\\passwd", "..\\secret", "escape",
    "efi", "", "a\0b",
])
def test_escapes_are_access_violations(root: Path, name: str) -> None:
    with pytest.raises(PathError) as info:
        resolve_in_root(root, name)
    assert info.value.code == 2


def test_missing_file_is_not_found(root: Path) -> None:
    with pytest.raises(PathError) as info:
        resolve_in_root(root, "nope.efi")
    assert info.value.code == 1
