"""The fork server's own process: ``python -m harness.forkserver.server MODULE``.

It imports ``MODULE`` once (a Python service's ``__main__``, with its framework: the
Control Plane's start is mostly importing FastAPI and building its routes' models, and
every lab starts one), then forks a child per request that runs ``MODULE.main(argv)``
in the namespace, directory, environment and log the request names. The child starts
warm: nothing is imported again.

Requests and answers are JSON lines (stdin, stdout); see :mod:`harness.forkserver`.
The server stays single-threaded, the one condition under which fork is safe. It is
the parent of every child, so a child's PID cannot be reused while the server still
lists it as running: signals for children go through it, never straight to a PID.
When its stdin closes or its parent changes (the harness ended, however) it kills what
it started and exits; its children also die with it (``PR_SET_PDEATHSIG``), so nothing
outlives it. (The server itself does not use PR_SET_PDEATHSIG: that follows the thread
that started it, and a harness thread may end long before the harness.)
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import json
import os
import select
import signal
import sys
import traceback
from typing import Any

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    """SIGKILL this process when its parent ends (the harness, or this server)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _enter_netns(fd: int) -> None:
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _child(entry: Any, main_file: str, req: dict[str, Any], log_fd: int, ns_fd: int | None,
           server_fds: tuple[int, ...]) -> None:
    """In the forked child: become the service, then exit with its status (never return)."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for fd in server_fds:
            os.close(fd)
        os.setsid()  # its own process group, as LabProcess's children: stop() signals it
        _die_with_parent()
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null)
        if ns_fd is not None:
            _enter_netns(ns_fd)
            os.close(ns_fd)
        os.chdir(req["cwd"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = [main_file, *req["argv"]]
        try:
            result = entry(list(req["argv"]))
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:  # sys.exit("message"): the message, as the interpreter would print it
                print(exc.code, file=sys.stderr)
                code = 1
        with contextlib.suppress(Exception):
            atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code & 0xFF)


class Server:
    """The request loop: spawn, signal, report exits."""

    def __init__(self, module: str) -> None:
        try:  # a package's command line runs its __main__ (python -m package)
            mod = importlib.import_module(f"{module}.__main__")
        except ModuleNotFoundError as exc:
            if exc.name != f"{module}.__main__":
                raise
            mod = importlib.import_module(module)
        self.entry = mod.main
        self.main_file = str(getattr(mod, "__file__", module))
        self.children: set[int] = set()
        self.out = sys.stdout
        self.wake: tuple[int, ...] = ()

    def send(self, doc: dict[str, Any]) -> None:
        self.out.write(json.dumps(doc) + "\n")
        self.out.flush()

    def spawn(self, req: dict[str, Any]) -> None:
        # the namespace, the log and the directory are opened or checked here, before the
        # fork, where an error can still be answered
        ns_fd = log_fd = None
        try:
            if req.get("netns"):
                ns_fd = os.open(f"/run/netns/{req['netns']}", os.O_RDONLY)
            log_fd = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if not os.path.isdir(req["cwd"]):
                raise FileNotFoundError(f"no directory {req['cwd']}")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(self.entry, self.main_file, req, log_fd, ns_fd, self.wake)
            self.children.add(pid)
            self.send({"id": req["id"], "pid": pid})
        except OSError as exc:
            self.send({"id": req["id"], "error": str(exc)})
        finally:
            for fd in (ns_fd, log_fd):
                if fd is not None:
                    os.close(fd)

    def signal(self, req: dict[str, Any]) -> None:
        pid = int(req["pid"])
        sent = False
        if pid in self.children:  # not reaped yet, so the PID is still this child's
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, int(req["sig"]))
                sent = True
        self.send({"id": req["id"], "sent": sent})

    def reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children.discard(pid)
            code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
            self.send({"exit": pid, "code": code})

    def shutdown(self) -> None:
        """Kill every child's group and reap them: nothing this server started outlives it."""
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.children.clear()

    def run(self) -> None:
        wake_r, wake_w = os.pipe()
        self.wake = (wake_r, wake_w)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: None)  # the harness ends it by closing stdin
        stdin = sys.stdin.buffer
        buf = b""
        parent = os.getppid()
        self.send({"ready": os.getpid()})
        try:
            while True:
                ready, _, _ = select.select([stdin.fileno(), wake_r], [], [], 1.0)
                if os.getppid() != parent:  # the harness died, its stdin end not closed
                    return
                if wake_r in ready:
                    os.read(wake_r, 512)
                    self.reap()
                if stdin.fileno() in ready:
                    chunk = os.read(stdin.fileno(), 65536)
                    if not chunk:
                        return
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self.handle(json.loads(line))
        finally:
            self.shutdown()

    def handle(self, req: dict[str, Any]) -> None:
        if req.get("op") == "spawn":
            self.spawn(req)
        elif req.get("op") == "signal":
            self.signal(req)
        else:
            self.send({"id": req.get("id"), "error": f"unknown request {req.get('op')!r}"})


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m harness.forkserver.server MODULE", file=sys.stderr)
        return 2
    Server(sys.argv[1]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
