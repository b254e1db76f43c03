"""The initramfs is LZ4 legacy frames ended by a zero block size, as the kernel reads it, so
the Control Plane's CA archive appended after it (nodeimage.trust) is found by the kernel."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bootproxy.cainitrd import ca_initrd
from nodeimage import initramfs
from nodeimage.errors import ArchiveError
from nodeimage.trust import initrd_with_ca

pytestmark = [pytest.mark.unit,
              pytest.mark.needs_binary("lz4", how="apt-get install lz4 (make setup)"),
              pytest.mark.needs(shutil.which("busybox") is not None,
                                reason="needs busybox: apt-get install busybox-static")]

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _image(tmp_path: Path) -> tuple[Path, bytes]:
    """A small initramfs written by write_archive, and its files' contents."""
    root = tmp_path / "root"
    (root / "flexlab").mkdir(parents=True)
    payload = os.urandom(3000) * 200  # compressible, and more than one small block
    (root / "flexlab" / "data").write_bytes(payload)
    (root / "init").write_text("#!/bin/sh\n")
    out = tmp_path / "initrd.img"
    busybox = Path(str(shutil.which("busybox")))
    initramfs.write_archive(root, out, busybox)
    return out, payload


def test_the_stream_ends_with_a_zero_size_then_the_ca_archive_follows(tmp_path: Path) -> None:
    image, payload = _image(tmp_path)
    raw = image.read_bytes()
    assert raw.startswith(initramfs.LZ4_LEGACY_MAGIC) and len(raw) % 4 == 0
    end = initramfs.lz4_stream_length(raw)
    assert raw[end:end + 4] == initramfs.LZ4_END_MARK  # what stops the kernel's unlz4
    cpio = initramfs.uncompressed(raw)
    assert payload in cpio and b"TRAILER!!!" in cpio
    combined = initrd_with_ca(image, _pem(tmp_path), tmp_path / "with-ca.img").read_bytes()
    assert initramfs.lz4_stream_length(combined) == end
    rest = combined[end:].lstrip(b"\0")  # the kernel skips NULs between archives
    assert rest == ca_initrd(PEM) and rest.startswith(b"070701")
    assert initramfs.uncompressed(combined) == cpio


def test_without_the_end_mark_the_ca_would_be_read_as_a_block(tmp_path: Path) -> None:
    """Why the mark is there: the lz4 tool ends its stream with no marker, so the CA's
    "0707" header would be taken for one more block's size (and run past the end)."""
    image, _ = _image(tmp_path)
    cpio = tmp_path / "plain.cpio"
    cpio.write_bytes(initramfs.uncompressed(image.read_bytes()))
    bare = initramfs._lz4([*initramfs.LZ4_COMMAND, str(cpio)])  # the tool's own output
    assert initramfs.lz4_stream_length(bare) == len(bare)
    appended = bare + b"\0" * (-len(bare) % 4) + ca_initrd(PEM)
    with pytest.raises(ArchiveError, match="runs past the end"):
        initramfs.lz4_stream_length(appended)


def test_something_else_is_refused_with_what_was_expected() -> None:
    with pytest.raises(ArchiveError, match="02 21 4c 18"):
        initramfs.uncompressed(b"\x1f\x8b\x08" + b"\0" * 20)


def _pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(PEM)
    return path


def test_another_lz4_release_is_another_image(monkeypatch: pytest.MonkeyPatch) -> None:
    from nodeimage.build import input_digest

    monkeypatch.setattr(initramfs, "compressor", lambda: "LZ4 v1.9.4")
    first, inputs = input_digest([], {"release": "6.1.999-flexlab"})
    assert inputs["compressor"] == "LZ4 v1.9.4"
    monkeypatch.setattr(initramfs, "compressor", lambda: "LZ4 v1.10.0")
    assert input_digest([], {"release": "6.1.999-flexlab"})[0] != first
