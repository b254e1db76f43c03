"""docs/ENV.md lists every FLEXLAB_* variable the code reads, and the one table of
deprecated names (harness/env.py) behaves: the new name wins, the old one still works
and says so."""

from __future__ import annotations

import logging
import re
from dataclasses import fields
from pathlib import Path

import pytest

from harness import env

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("harness", "bootproxy", "controlplane", "nodeimage", "bench", "scripts", "images",
           "tests", "ci-examples", "Makefile", "tox.ini", "conftest.py")
# not after "@": @FLEXLAB_NOW@ in the node image's scripts is a placeholder, not a variable
NAME = re.compile(r"(?<![A-Za-z0-9_@])FLEXLAB_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_])")
# FLEXLAB_* words in the code that are not environment variables
NOT_ENV = {
    "FLEXLAB_NS",  # a Python constant: the libvirt metadata XML namespace
}


def _files() -> list[Path]:
    out: list[Path] = []
    for name in SCANNED:
        path = ROOT / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [p for p in out if p.resolve() != Path(__file__).resolve()]


def names_in_code() -> dict[str, Path]:
    """Every FLEXLAB_* word in the scanned files (first file it was seen in), plus one
    ``FLEXLAB_BP_<SETTING>`` per Boot Proxy setting (read as prefix + field name)."""
    from bootproxy.config import ENV_PREFIX, BootProxyConfig

    found: dict[str, Path] = {}
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary fixtures
        for word in NAME.findall(text):
            found.setdefault(word, path)
    config = ROOT / "bootproxy" / "config.py"
    for f in fields(BootProxyConfig):
        found.setdefault(ENV_PREFIX + f.name.upper(), config)
    found.setdefault(ENV_PREFIX + "CONFIG", config)
    return {k: v for k, v in found.items() if k not in NOT_ENV}


def test_every_variable_the_code_reads_is_in_env_md() -> None:
    documented = set(NAME.findall((ROOT / "docs" / "ENV.md").read_text(encoding="utf-8")))
    missing = {name: str(path.relative_to(ROOT)) for name, path in names_in_code().items()
               if name not in documented}
    assert not missing, f"add these to docs/ENV.md: {missing}"


def test_the_scan_finds_what_it_must() -> None:
    # a scan that found nothing would pass the test above: prove it reads the code
    names = names_in_code()
    for known in ("FLEXLAB_CP_ADMIN_TOKEN", "FLEXLAB_BMC_PASSWORD", "FLEXLAB_BP_CP_TOKEN",
                  "FLEXLAB_BP_REPLY_DELAY_MS", "FLEXLAB_TEST_SHARD", "FLEXLAB_BASE_TAG"):
        assert known in names, known


def test_deprecated_names_are_documented_with_their_replacement() -> None:
    text = (ROOT / "docs" / "ENV.md").read_text(encoding="utf-8")
    for old, new in env.DEPRECATED.items():
        assert f"| `{old}` | `{new}` |" in text


def test_read_prefers_the_new_name_and_warns_once_for_the_old(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "_warned", set())
    assert env.read("FLEXLAB_CP_ADMIN_TOKEN", {}) is None
    both = {"FLEXLAB_CP_ADMIN_TOKEN": "new", "FLEXLAB_CP_TOKEN": "old"}
    assert env.read("FLEXLAB_CP_ADMIN_TOKEN", both) == "new"
    with caplog.at_level(logging.WARNING, logger="flexlab.env"):
        assert env.read("FLEXLAB_CP_ADMIN_TOKEN", {"FLEXLAB_CP_TOKEN": "old"}) == "old"
        assert env.read("FLEXLAB_CP_ADMIN_TOKEN", {"FLEXLAB_CP_TOKEN": "old"}) == "old"
    warnings = [r.getMessage() for r in caplog.records if r.name == "flexlab.env"]
    assert warnings == ["FLEXLAB_CP_TOKEN is deprecated: set FLEXLAB_CP_ADMIN_TOKEN instead "
                        "(docs/ENV.md)"]
