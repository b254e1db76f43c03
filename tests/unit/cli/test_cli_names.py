"""Usage lines name the command as the user typed it, and the shell can complete
every command's options (argcomplete, through the real console script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bootproxy import __main__ as bootproxy_main
from controlplane import __main__ as cp_main
from harness import cli

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("argv", "usage"), [
    (["bootproxy", "--help"], "usage: flexlab bootproxy "),
    (["cp", "serve", "--help"], "usage: flexlab cp serve "),
    (["run", "--help"], "usage: flexlab run "),
    (["verify", "--help"], "usage: flexlab verify "),
])
def test_usage_through_flexlab(argv: list[str], usage: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.startswith(usage)


@pytest.mark.parametrize(("argv0", "bp", "cp"), [
    ("/usr/bin/flexlab-bootproxy", "flexlab-bootproxy", "flexlab-bootproxy"),
    ("/usr/bin/flexlab-controlplane", "flexlab-controlplane", "flexlab-controlplane"),
    ("/x/bootproxy/__main__.py", "python -m bootproxy", "python -m controlplane"),
])
def test_usage_as_invoked(argv0: str, bp: str, cp: str) -> None:
    assert bootproxy_main.invoked_as(argv0) == bp
    assert cp_main.invoked_as(argv0) == cp


def _complete(line: str, tmp_path: Path) -> list[str]:
    """Ask the installed ``flexlab`` script for completions, as bash's hook does."""
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
           "_ARGCOMPLETE_IFS": "\n", "COMP_TYPE": "9"}
    script = Path(sys.executable).with_name("flexlab")
    subprocess.run([str(script)], env=env, check=True, timeout=60, capture_output=True)
    return [w.strip() for w in out.read_text().split("\n") if w.strip()]


def test_completion_of_commands_and_delegated_options(tmp_path: Path) -> None:
    commands = _complete("flexlab ", tmp_path)
    assert {"run", "check-pcap", "inspect", "verify", "site-check"} <= set(commands)
    assert "--junit" in _complete("flexlab check-pcap --ju", tmp_path)
    assert "--boot-proxy-image" in _complete("flexlab run --boot", tmp_path)
