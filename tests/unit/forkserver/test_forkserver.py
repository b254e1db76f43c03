"""The fork server: a Python service started warm, forked from a process that imported
it once, behaves as the same command line started by Popen would (its argv, log,
environment, directory, exit status, signals), and nothing it started outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import harness.forkserver as forkserver
from harness.errors import ComponentError
from harness.forkserver import ForkServer, fork_server_for
from harness.lab.process import LabProcess

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

# a service: its import is recorded (once per process that imports it); main() reports
# what it was given, then does what its first argument says
_SERVICE = '''
import json, os, signal, sys, time
with open(os.environ["WARMSVC_IMPORTS"], "a") as f:
    f.write(f"{os.getpid()}\\n")

def main(argv):
    print(json.dumps({"argv": argv, "sys_argv0": sys.argv[0], "cwd": os.getcwd(),
                      "env": dict(os.environ), "pid": os.getpid(),
                      "pgid": os.getpgid(0)}), flush=True)
    what = argv[0] if argv else ""
    if what == "exit":
        return int(argv[1])
    if what == "raise":
        raise RuntimeError("the service broke")
    if what == "sysexit":
        sys.exit("a usage error")
    if what == "sleep":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        time.sleep(60)
    if what == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring", flush=True)
        time.sleep(60)
    if what == "netns":
        print(json.dumps({"netns_inode": os.stat("/proc/self/ns/net").st_ino}), flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
'''


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package ``warmsvc`` importable by the fork server (PYTHONPATH); the file its
    imports are recorded in."""
    pkg = tmp_path / "lib" / "warmsvc"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(textwrap.dedent(_SERVICE))
    imports = tmp_path / "imports.txt"
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "lib"))
    monkeypatch.setenv("WARMSVC_IMPORTS", str(imports))
    monkeypatch.setattr(forkserver, "WARM_MODULES", ("warmsvc",))
    yield imports
    forkserver.close_all()


def _report(log: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(log.read_text().splitlines()[0])
    return doc


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def test_children_run_main_with_what_they_were_given_and_import_nothing_again(
        service: Path, tmp_path: Path) -> None:
    server = ForkServer("warmsvc")
    try:
        children = []
        for n in range(3):
            workdir = tmp_path / f"cwd{n}"
            workdir.mkdir()
            child = server.spawn(["exit", str(n), "--flag"], tmp_path / f"svc{n}.log",
                                 netns=None, env={"ONLY": f"v{n}", "PATH": "/usr/bin"},
                                 cwd=workdir)
            children.append((child, workdir))
        for n, (child, workdir) in enumerate(children):
            assert child.wait(timeout=10) == n
            report = _report(tmp_path / f"svc{n}.log")
            assert report["argv"] == ["exit", str(n), "--flag"]
            assert report["cwd"] == str(workdir)
            assert report["env"] == {"ONLY": f"v{n}", "PATH": "/usr/bin"}  # exactly these
            assert str(report["sys_argv0"]).endswith("warmsvc/__main__.py")
            assert report["pgid"] == report["pid"] == child.pid  # its own process group
    finally:
        server.close()
    # imported once, by the server: the children started warm
    assert service.read_text().splitlines() == [str(server.pid)]


@pytest.mark.parametrize(("argv", "status", "logged"), [
    (["raise"], 1, "RuntimeError: the service broke"),
    (["sysexit"], 1, "a usage error"),
    (["exit", "0"], 0, ""),
])
def test_the_exit_status_and_a_crash_are_the_commands(
        service: Path, tmp_path: Path, argv: list[str], status: int, logged: str) -> None:
    server = ForkServer("warmsvc")
    try:
        child = server.spawn(argv, tmp_path / "svc.log", netns=None, env={}, cwd=tmp_path)
        assert child.wait(timeout=10) == status
        assert logged in (tmp_path / "svc.log").read_text()
    finally:
        server.close()


def test_a_warm_lab_process_stops_by_sigterm_and_a_stubborn_one_is_killed(
        service: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "warmsvc"]
    calm = LabProcess("calm", [*argv, "sleep"], tmp_path / "calm.log", warm=True).start()
    stubborn = LabProcess("stubborn", [*argv, "stubborn"], tmp_path / "stubborn.log",
                          warm=True).start()
    calm.wait_for_log('"argv"', timeout=10)
    stubborn.wait_for_log("ignoring", timeout=10)
    assert calm.running() and stubborn.running()
    assert calm.stop(timeout=5) == 0
    assert stubborn.stop(timeout=1) == -signal.SIGKILL
    assert not calm.running() and not stubborn.running()
    assert _gone(calm.pid) and _gone(stubborn.pid)
    # both came from the one fork server (warm), not from Popen
    assert len(service.read_text().splitlines()) == 1


def test_a_signal_for_a_child_that_ended_is_not_sent(service: Path, tmp_path: Path) -> None:
    """Its PID may belong to another process by now: only the server, its parent, knows
    it is still the child's, so only the server signals."""
    server = ForkServer("warmsvc")
    try:
        child = server.spawn(["exit", "0"], tmp_path / "svc.log", netns=None, env={},
                             cwd=tmp_path)
        child.wait(timeout=10)
        assert server.signal(child.pid, signal.SIGTERM) is False
    finally:
        server.close()


def test_closing_the_server_ends_every_child(service: Path, tmp_path: Path) -> None:
    server = ForkServer("warmsvc")
    child = server.spawn(["stubborn"], tmp_path / "svc.log", netns=None, env={}, cwd=tmp_path)
    deadline = time.monotonic() + 10
    while "ignoring" not in (tmp_path / "svc.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    server.close()
    assert _gone(child.pid) and _gone(server.pid)


def test_a_harness_that_dies_leaves_nothing_running(service: Path, tmp_path: Path) -> None:
    """The harness is SIGKILLed with a service running: no teardown, and the server's
    stdin stays open, held by a process the harness forked (pyroute2 forks one per
    namespace). The server sees its parent change, kills the service and exits."""
    script = textwrap.dedent(f"""
        import json, os, sys, time
        from pathlib import Path
        from harness.forkserver import ForkServer
        server = ForkServer("warmsvc")
        child = server.spawn(["stubborn"], Path({str(tmp_path / 'svc.log')!r}), netns=None,
                             env={{}}, cwd=Path({str(tmp_path)!r}))
        holder = os.fork()
        if holder == 0:
            time.sleep(30)
            os._exit(0)
        print(json.dumps({{"server": server.pid, "child": child.pid, "holder": holder}}),
              flush=True)
        time.sleep(60)
    """)
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               text=True, cwd=Path(forkserver.__file__).parents[2])
    assert harness.stdout is not None
    pids = json.loads(harness.stdout.readline())
    try:
        harness.kill()
        harness.wait()
        assert _gone(pids["child"]) and _gone(pids["server"])
    finally:
        os.kill(pids["holder"], signal.SIGKILL)


def test_a_start_that_cannot_happen_is_a_clear_error_and_the_server_goes_on(
        service: Path, tmp_path: Path) -> None:
    server = ForkServer("warmsvc")
    try:
        with pytest.raises(ComponentError, match="no directory"):
            server.spawn(["exit", "0"], tmp_path / "a.log", netns=None, env={},
                         cwd=tmp_path / "missing")
        with pytest.raises(ComponentError, match="no-such-flexlab-netns"):
            server.spawn(["exit", "0"], tmp_path / "b.log", netns="no-such-flexlab-netns",
                         env={}, cwd=tmp_path)
        child = server.spawn(["exit", "5"], tmp_path / "c.log", netns=None, env={},
                             cwd=tmp_path)
        assert child.wait(timeout=10) == 5
    finally:
        server.close()


def test_a_module_that_cannot_be_imported_is_a_clear_error(
        service: Path, tmp_path: Path) -> None:
    broken = tmp_path / "lib" / "brokensvc"
    broken.mkdir()
    (broken / "__init__.py").write_text("")
    (broken / "__main__.py").write_text("import no_such_module_flexlab\n")
    with pytest.raises(ComponentError, match="no_such_module_flexlab"):
        ForkServer("brokensvc")


def _servers_of(module: str) -> list[int]:
    """PIDs of running fork servers for ``module`` (read from /proc, zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if argv[1:4] == [b"-m", b"harness.forkserver.server", module.encode()] and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_module_whose_import_hangs_fails_the_start_in_time_and_leaves_nothing(
        service: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = tmp_path / "lib" / "stucksvc"
    stuck.mkdir()
    (stuck / "__init__.py").write_text("")
    (stuck / "__main__.py").write_text(
        "import sys, time\nprint('importing, slowly', file=sys.stderr, flush=True)\n"
        "time.sleep(600)\n")
    monkeypatch.setattr(forkserver, "_START_TIMEOUT_S", 1.0)
    began = time.monotonic()
    with pytest.raises(ComponentError, match=r"nothing within 1 s\): importing, slowly"):
        ForkServer("stucksvc")
    assert time.monotonic() - began < 10
    assert _servers_of("stucksvc") == []


def test_only_a_warm_modules_own_command_line_starts_forked(
        service: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fork_server_for([sys.executable, "-c", "pass"]) is None
    assert fork_server_for([sys.executable + "-other", "-m", "warmsvc"]) is None
    assert fork_server_for([sys.executable, "-m", "othermodule", "x"]) is None
    found = fork_server_for([sys.executable, "-m", "warmsvc", "a", "b"])
    assert found is not None and found[1] == ["a", "b"]
    monkeypatch.setenv("FLEXLAB_FORKSERVER", "0")
    assert fork_server_for([sys.executable, "-m", "warmsvc", "a"]) is None


def test_a_lab_process_not_asked_to_be_warm_starts_by_popen(
        service: Path, tmp_path: Path) -> None:
    proc = LabProcess("cold", [sys.executable, "-m", "warmsvc", "exit", "4"],
                      tmp_path / "cold.log").start()
    deadline = time.monotonic() + 20
    while proc.running():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert proc.returncode() == 4
    assert _report(tmp_path / "cold.log")["pid"] == proc.pid
    assert service.read_text().splitlines() == [str(proc.pid)]  # it imported for itself
