"""SIGTERM as Ctrl-C only inside the block, only in the process that asked for it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness.signals import sigterm_as_interrupt

pytestmark = pytest.mark.unit


def test_sigterm_raises_keyboardinterrupt_inside_and_the_old_handler_returns() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before


def _child_status(signum: int) -> int:
    """Fork a child that waits, send it ``signum``, return its wait status (call inside
    the handler's block: the child is a copy of this process, handler included)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: say it is ready, then wait to be stopped
        os.close(read)
        os.write(write, b"x")
        try:  # not signal.pause(): a signal landing just before it would never wake it
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            os._exit(3)  # what the bug looked like
        os._exit(4)
    os.close(write)
    assert os.read(read, 1) == b"x"
    os.close(read)
    os.kill(pid, signum)
    _, status = os.waitpid(pid, 0)
    return status


def test_a_forked_child_still_dies_of_sigterm() -> None:
    # pyroute2 forks helpers and stops them with SIGTERM; a copy of pytest that raised
    # KeyboardInterrupt instead ran the session's teardown and removed the parent's labs
    with sigterm_as_interrupt():
        status = _child_status(signal.SIGTERM)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, status


def test_site_check_main_leaves_no_handler_behind() -> None:
    from harness.sitecheck import cli

    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["--iface", "nonexistent0", "-q"]) == 2
    assert signal.getsignal(signal.SIGTERM) == before


def test_interruptible_turns_sigint_and_sigterm_into_interrupted() -> None:
    from harness.signals import Interrupted, interruptible

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for signum in (signal.SIGINT, signal.SIGTERM):
        with pytest.raises(Interrupted) as caught, interruptible():
            os.kill(os.getpid(), signum)
        assert caught.value.signum == signum
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_does_not_cut_the_clean_up_short(
        capsys: pytest.CaptureFixture[str]) -> None:
    from harness.signals import Interrupted, interruptible

    cleaned = []
    with pytest.raises(Interrupted), interruptible():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # the impatient second Ctrl-C
            cleaned.append("lab torn down")
    assert cleaned == ["lab torn down"]
    assert "still cleaning up" in capsys.readouterr().err


def test_a_forked_child_still_dies_of_sigint() -> None:
    from harness.signals import interruptible

    with interruptible():
        status = _child_status(signal.SIGINT)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGINT, status


def test_deferred_holds_the_interrupt_until_the_block_ends() -> None:
    from harness.signals import Interrupted, deferred, interruptible

    done = []
    with pytest.raises(Interrupted) as caught, interruptible():
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            done.append("the rest of the block ran")
        done.append("never: the interrupt is raised as the block ends")
    assert caught.value.signum == signal.SIGTERM
    assert done == ["the rest of the block ran"]


def test_deferred_interrupt_wins_over_the_blocks_own_error() -> None:
    from harness.signals import Interrupted, deferred, interruptible

    with pytest.raises(Interrupted) as caught, interruptible(), deferred():
        os.kill(os.getpid(), signal.SIGINT)
        raise ValueError("the block failed too")
    assert isinstance(caught.value.__context__, ValueError)


def test_a_signal_while_a_lab_process_starts_leaves_no_child_behind(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI: SIGTERM arrived while Popen waited for the child's exec; Python abandons such a
    child (neither killed nor returned), and one in its own session outlived site-check.
    Here the signal lands just as the child exists, before Popen returns."""
    import subprocess

    from harness.lab.process import LabProcess
    from harness.signals import Interrupted, interruptible

    real_popen = subprocess.Popen
    born: list[int] = []

    def popen_cut_short(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        born.append(child.pid)
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside "Popen"
        return child

    monkeypatch.setattr(subprocess, "Popen", popen_cut_short)
    with pytest.raises(Interrupted), interruptible(), \
            LabProcess("sleeper", ["sleep", "60"], tmp_path / "sleeper.log"):
        pytest.fail("the interrupt should have stopped the start")
    assert born, "the child was never started"
    assert not Path(f"/proc/{born[0]}").exists(), "the child outlived the interrupt"
