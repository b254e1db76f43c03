"""Helpers for the command-line contract tests: parse the one JSON document a command
printed, and send this process a signal from inside a command's body."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
PCAPS = ROOT / "fixtures" / "pcaps"
GOLDEN = PCAPS / "golden_ovmf-pxe_bootproxy.pcap"
SMOKE = ROOT / "scenarios" / "smoke.yaml"
BAD_SCENARIO = ROOT / "fixtures" / "scenarios-bad" / "duplicate-key.yaml"


def json_doc(capsys: pytest.CaptureFixture[str], fmt: str) -> dict[str, Any]:
    """stdout holds exactly one JSON document of format ``fmt``."""
    doc = json.loads(capsys.readouterr().out)
    assert isinstance(doc, dict)
    assert doc["format"] == fmt
    return doc


def kill_self(signum: int = signal.SIGTERM) -> Any:
    """A stand-in for a command's body that signals this process, as a user's Ctrl-C or a
    CI runner's SIGTERM would; the real handler then has to turn it into exit 130."""
    def body(*_args: Any, **_kwargs: Any) -> Any:
        os.kill(os.getpid(), signum)
        raise AssertionError("the signal did not interrupt the command")
    return body


def make_bundle(directory: Path) -> tuple[Path, Any]:
    """A valid signed certification bundle and its key (the smallest one verify accepts)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from harness.certify.bundle import REQUIRED, write_bundle

    key = Ed25519PrivateKey.generate()
    files: dict[str, bytes | Path] = {name: b"{}" for name in REQUIRED}
    files["certification.json"] = json.dumps(
        {"verdict": "CERTIFIED", "mac": "52:54:00:00:00:01"}).encode()
    bundle = directory / "b.tar.gz"
    write_bundle(bundle, files, key)
    return bundle, key
