"""Start a Python service warm: a fork server per service module, per harness process.

Every lab starts its own Control Plane (``python -m controlplane``) and often a Boot
Proxy process (``python -m bootproxy``); each start imported the service's framework
again: the largest CPU item of a small lab, on a suite that is CPU-bound (over 12
labs the Control Plane used 10.9 CPU-s started plain and 2.6 forked:
bench/results/forkserver-cpu-ab.json). A :class:`ForkServer` imports the module
once (:mod:`harness.forkserver.server`) and forks a child per start that runs the
module's ``main(argv)`` in the lab's namespace, with its own log, environment and
directory, exactly as the command line would have. :class:`ForkedChild` is the
harness's handle on one: its PID, its exit status, its signals (sent by the server,
its parent, so never to a reused PID).

:func:`fork_server_for` answers which command lines can start this way:
``[sys.executable, "-m", <module>, ...]`` of a module in :data:`WARM_MODULES`. The
server starts lazily, once, and ends with this process (its stdin closes).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.errors import ComponentError

#: services a lab starts as ``python -m <module>``, whose ``main(argv)`` can run in a
#: forked child; ``FLEXLAB_FORKSERVER=0`` starts them as plain processes instead
WARM_MODULES = ("controlplane", "bootproxy")

_START_TIMEOUT_S = 60.0
_REPLY_TIMEOUT_S = 15.0


class ForkServer:
    """One ``python -m harness.forkserver.server MODULE`` and the lines it answers."""

    def __init__(self, module: str) -> None:
        self.module = module
        self._lock = threading.Lock()        # one request at a time on stdin
        self._cond = threading.Condition()   # answers and exits arrive on the reader
        self._answers: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._next_id = 0
        self._closed = False
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "harness.forkserver.server", module],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        assert self._proc.stdout is not None
        first = self._first_line(_START_TIMEOUT_S)  # the import: the one cost it pays
        try:
            doc = json.loads(first or b"")
            self.pid = int(doc["ready"])
        except (ValueError, KeyError, TypeError):
            self._kill()  # a server that said something else, or nothing in time
            err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
            said = (f"nothing within {_START_TIMEOUT_S:.0f} s" if first is None
                    else repr(first[-200:]))
            raise ComponentError(f"the fork server for {module} did not start (it said "
                                 f"{said}): {err.strip()[-2000:]}") from None
        self._reader = threading.Thread(target=self._read, name=f"forkserver-{module}",
                                        daemon=True)
        self._reader.start()
        self.stderr_tail: list[str] = []  # the server's own warnings, should it print any
        threading.Thread(target=self._drain_stderr, name=f"forkserver-{module}-err",
                         daemon=True).start()

    def _first_line(self, timeout: float) -> bytes | None:
        """The server's first stdout line, or None if none came within ``timeout``: an
        import that hangs must fail the lab's start, not hang it."""
        stdout = self._proc.stdout
        assert stdout is not None
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(stdout.readline()),
                                  name=f"forkserver-{self.module}-start", daemon=True)
        reader.start()
        reader.join(timeout)
        return got[0] if got else None

    def _kill(self) -> None:
        """End the server and whatever it started (its own process group), and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, 9)
        self._proc.wait()

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self.stderr_tail = [*self.stderr_tail[-49:], raw.decode(errors="replace")]

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            doc = json.loads(raw)
            with self._cond:
                if "exit" in doc:
                    self._exits[int(doc["exit"])] = int(doc["code"])
                else:
                    self._answers[int(doc["id"])] = doc
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if not self.alive():
                raise ComponentError(f"the fork server for {self.module} has ended")
            self._next_id += 1
            ident = self._next_id
            assert self._proc.stdin is not None
            self._proc.stdin.write((json.dumps({**request, "id": ident}) + "\n").encode())
            self._proc.stdin.flush()
        deadline = time.monotonic() + _REPLY_TIMEOUT_S
        with self._cond:
            while ident not in self._answers:
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    raise ComponentError(f"the fork server for {self.module} did not answer")
                self._cond.wait(left)
            return self._answers.pop(ident)

    def alive(self) -> bool:
        """True while the server runs and answers."""
        return not self._closed and self._proc.poll() is None

    def spawn(self, argv: list[str], log_path: Path, *, netns: str | None,
              env: dict[str, str], cwd: Path) -> ForkedChild:
        """Run ``main(argv)`` of the module in a new child: output appended to
        ``log_path``, in ``netns`` (None: this host's), with exactly ``env``, in ``cwd``."""
        answer = self._ask({"op": "spawn", "argv": argv, "log": str(log_path),
                            "netns": netns, "env": env, "cwd": str(cwd)})
        if "error" in answer:
            raise ComponentError(f"{self.module}: cannot start: {answer['error']}")
        return ForkedChild(self, int(answer["pid"]))

    def signal(self, pid: int, sig: int) -> bool:
        """Signal child ``pid``'s process group; False when it has already ended."""
        return bool(self._ask({"op": "signal", "pid": pid, "sig": sig})["sent"])

    def exit_status(self, pid: int, timeout: float | None = 0.0) -> int | None:
        """Child ``pid``'s exit status once it ended (waiting up to ``timeout``, None:
        forever); None while it runs."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while pid not in self._exits:
                if self._closed:
                    return -9  # the server killed what it started when it ended
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            return self._exits[pid]

    def close(self) -> None:
        """End the server: it kills and reaps every child it started."""
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)


class ForkedChild:
    """A service started by a :class:`ForkServer`: the parts of ``Popen`` LabProcess uses."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        return self.server.exit_status(self.pid)

    def poll(self) -> int | None:
        return self.server.exit_status(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        code = self.server.exit_status(self.pid, timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        return code

    def send_group_signal(self, sig: int) -> None:
        self.server.signal(self.pid, sig)


_servers: dict[str, ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server_for(argv: list[str]) -> tuple[ForkServer, list[str]] | None:
    """The fork server that can start ``argv`` warm, and the arguments its ``main``
    takes; None when ``argv`` is not ``[sys.executable, "-m", <warm module>, ...]`` or
    ``FLEXLAB_FORKSERVER=0``."""
    if len(argv) < 3 or argv[0] != sys.executable or argv[1] != "-m":
        return None
    module = argv[2]
    if module not in WARM_MODULES or os.environ.get("FLEXLAB_FORKSERVER", "1") == "0":
        return None
    with _servers_lock:
        server = _servers.get(module)
        if server is None or not server.alive():
            server = _servers[module] = ForkServer(module)
    return server, argv[3:]


def close_all() -> None:
    """End every fork server this process started (and so every child they run)."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
    for server in servers:
        server.close()
