"""bench/bundle_gzip.py packs a bundle's files as the bundle writer does, at the level given."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from bench.bundle_gzip import pack

pytestmark = pytest.mark.unit


def test_pack_keeps_every_file_and_a_higher_level_is_not_larger(tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / "pcap").mkdir(parents=True)
    (root / "pcap" / "lan.pcap").write_bytes(bytes(range(256)) * 4000)
    (root / "run.json").write_text('{"verdict": "pass"}\n' * 500)
    sizes = {}
    for level in (1, 9):
        cpu, sizes[level] = pack(root, tmp_path / f"{level}.tar.gz", level)
        assert cpu >= 0
        with tarfile.open(tmp_path / f"{level}.tar.gz", "r:gz") as tar:
            assert sorted(tar.getnames()) == ["pcap", "pcap/lan.pcap", "run.json"]
    assert sizes[9] <= sizes[1]
