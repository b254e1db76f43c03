"""The one way the harness runs a long-lived process: in a lab namespace or on this host.

``netns=None`` is this host (LocalBoot, certify, the bench); a name is a lab namespace.
Output goes to a log file that outlives the process; readiness is a list of
:mod:`harness.lab.waits` conditions; stop is by process group, never by name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Self

from harness.errors import ComponentError
from harness.forkserver import ForkedChild, fork_server_for
from harness.lab.waits import Condition, LogLine, wait_for
from harness.logs import log_event
from harness.signals import deferred
from harness.wait import StartedAndReady


def ns_argv(netns: str | None, argv: list[str]) -> list[str]:
    """``argv`` prefixed so that it runs in network namespace ``netns``.

    nsenter takes a plain argument list (no shell), and unlike a
    ``preexec_fn`` that calls setns it is safe in a threaded parent.
    """
    if netns is None:
        return list(argv)
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


def run_once(argv: list[str], netns: str | None = None,
             timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run a short command to completion (in ``netns``, or on this host) and return it,
    output captured; the caller decides which exit status is an error, and says so."""
    return subprocess.run(ns_argv(netns, argv), capture_output=True, text=True,
                          timeout=timeout, check=False)


def _signal_group(proc: subprocess.Popen[bytes] | ForkedChild, sig: int) -> None:
    """Signal the process group ``proc`` leads (its own session); a forked child through
    its server, which knows whether the PID is still its child's."""
    if isinstance(proc, ForkedChild):
        proc.send_group_signal(sig)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


class LabProcess(StartedAndReady):
    """One long-running process: a lab component's, or one on this host (``netns=None``).

    stdout and stderr go to ``log_path`` (the log that reports attach). Readiness is
    waited on by :meth:`wait` with composable conditions; :meth:`stop` ends it by PID,
    never by name. As a context manager it starts and always stops.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, netns: str | None = None,
                 *, env: dict[str, str] | None = None, cwd: Path | None = None,
                 warm: bool = False) -> None:
        """``warm``: a Python service this process has a fork server for
        (:mod:`harness.forkserver`) starts as a child of it, its imports already done;
        any other command line starts as usual."""
        self.name = name
        self.warm = warm
        self.argv = list(argv)
        self.log_path = log_path
        self.netns = netns
        self.env = None if env is None else {**os.environ, **env}
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | ForkedChild | None = None
        self._start_offset = 0
        self._started_at = 0.0
        self._stop_logged = False

    @property
    def pid(self) -> int:
        """PID of the running process."""
        if self._proc is None:
            raise ComponentError(f"{self.name} was never started")
        return self._proc.pid

    def start(self) -> Self:
        """Start the process; it runs in its own process group so stop() reaches children."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._start_offset = log.tell()  # a restart appends: waits read this run only
            # a Ctrl-C/SIGTERM waits until the PID is recorded (Popen would abandon a
            # forked child), then raises here with stop() able to reach the process
            forked = fork_server_for(self.argv) if self.warm else None
            try:
                with deferred():
                    if forked is not None:
                        server, args = forked
                        self._proc = server.spawn(
                            args, self.log_path, netns=self.netns,
                            env=dict(os.environ) if self.env is None else self.env,
                            cwd=self.cwd or Path.cwd())
                    else:
                        self._proc = subprocess.Popen(
                            ns_argv(self.netns, self.argv),
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            start_new_session=True,
                            env=self.env,
                            cwd=self.cwd,
                        )
            except FileNotFoundError as exc:
                raise ComponentError(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc
        self._started_at, self._stop_logged = time.monotonic(), False
        log_event("process_start", f"{self.name} started, pid {self._proc.pid}",
                  name=self.name, pid=self._proc.pid, netns=self.netns, argv=self.argv,
                  log=str(self.log_path), forked=isinstance(self._proc, ForkedChild))
        return self

    def running(self) -> bool:
        """True while the process has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        """Exit status, or None while it runs."""
        return None if self._proc is None else self._proc.poll()

    def log_text(self) -> str:
        """Everything the process printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def output(self) -> str:
        """What this run printed (the log may hold earlier runs: a restarted service)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._start_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_lines(self) -> list[str]:
        """The log so far, line by line."""
        return self.log_text().splitlines()

    def wait(self, *conditions: Condition, timeout: float) -> list[Any]:
        """Wait for ``conditions`` in order and return their results (see :func:`wait_for`)."""
        return wait_for(self, *conditions, timeout=timeout)

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the log matches ``pattern``; fail at once if the process died."""
        match: re.Match[str] = self.wait(LogLine(pattern), timeout=timeout)[0]
        return match

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process group, wait, then SIGKILL what is left. Returns the exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is not None:
            self._log_stopped(None, killed=False)
            return proc.returncode
        _signal_group(proc, sig)
        killed = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            killed = True
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=timeout)
        self._log_stopped(signal.Signals(sig).name, killed)
        return proc.returncode

    def _log_stopped(self, sig: str | None, killed: bool) -> None:
        """``process_stop``, once per start; a warning when it had failed by itself before
        ``stop()`` (``sig`` None, status not 0) or outlived ``sig`` and was killed."""
        if self._proc is None or self._stop_logged:
            return
        self._stop_logged = True
        pid, status = self._proc.pid, self._proc.returncode
        if sig is None:
            how, bad = f"had exited by itself, status {status}", status != 0
        elif killed:
            how, bad, sig = f"ignored {sig}; killed", True, "SIGKILL"
        else:
            how, bad = f"stopped by {sig}, status {status}", False
        log_event("process_stop", f"{self.name} (pid {pid}) {how}",
                  level=logging.WARNING if bad else logging.INFO, name=self.name, pid=pid,
                  returncode=status, signal=sig,
                  seconds=round(time.monotonic() - self._started_at, 3))

    def wait_ready(self, timeout: float = 20.0) -> Any:
        """Block until the process serves (subclasses name their conditions); here: at once."""
        return None
