"""Processes run inside a lab namespace, with their output captured to a log file."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path

from harness.errors import ComponentError
from harness.wait import wait_until


def ns_argv(netns: str | None, argv: list[str]) -> list[str]:
    """``argv`` prefixed so that it runs in network namespace ``netns``.

    nsenter takes a plain argument list (no shell), and unlike a
    ``preexec_fn`` that calls setns it is safe in a threaded parent.
    """
    if netns is None:
        return list(argv)
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


class LabProcess:
    """One long-running process of a lab component.

    stdout and stderr go to ``log_path`` (the component log that reports
    attach). Readiness is waited on by :meth:`wait_for_log` or a caller's own
    probe; :meth:`stop` ends it by PID, never by name.
    """

    def __init__(self, name: str, argv: list[str], log_path: Path, netns: str | None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.netns = netns
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """PID of the running process."""
        if self._proc is None:
            raise ComponentError(f"{self.name} was never started")
        return self._proc.pid

    def start(self) -> None:
        """Start the process; it runs in its own process group so stop() reaches children."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            try:
                self._proc = subprocess.Popen(
                    ns_argv(self.netns, self.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise ComponentError(f"{self.name}: cannot run {self.argv[0]!r}: {exc}") from exc

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

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the log matches ``pattern``; fail at once if the process died."""

        def probe() -> re.Match[str] | None:
            match = re.search(pattern, self.log_text(), re.MULTILINE)
            if match is None and not self.running():
                raise ComponentError(
                    f"{self.name} exited with status {self.returncode()} before it was ready:\n"
                    + self.log_tail()
                )
            return match

        return wait_until(
            probe, timeout=timeout, what=f"{self.name} to log /{pattern}/", evidence=self.log_tail
        )

    def stop(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int | None:
        """Signal the process group, wait, then SIGKILL what is left. Returns the exit status."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        return proc.returncode
