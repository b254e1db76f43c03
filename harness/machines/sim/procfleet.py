"""One segment's emulated machines in several processes: a fleet that uses every core.

A :class:`~harness.machines.sim.fleet.Fleet` runs all its machines on one asyncio loop in
one thread, so a storm's whole fleet gets one core, and in a 1,000-machine storm that loop
is the busiest thread on the host (bench/results/profile-storm-1000.json). A
:class:`ProcessFleet` deals the machines out, in turn, to N child processes; each runs an
ordinary Fleet over its share, in the same namespace and on the same link (each has its
own raw socket: every one sees every DHCP reply and keeps its own machines', by chaddr).

The parent keeps a mirror of every machine, fed by the children's messages, with the
attributes the sim driver reads (state, timeline, error, finished, failed_starts), and
forwards power requests to the child that owns the machine. A child is a fresh
``python -m harness.machines.sim.procfleet --child FD`` talking over a socket pair (not
multiprocessing's "spawn", which re-imports the parent's main module: seconds a child
under a storm's bench script, all of it counted in the machines' boot times; fork is
unsafe, the harness process has threads). Children die with the thread that started
them (PR_SET_PDEATHSIG) and ignore Ctrl-C: the parent stops them, by PID.
Ask for it with ``FLEXLAB_FLEET_PROCESSES=N`` (harness/builder/sim_driver.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from harness.lab.lab import Lab
from harness.machines.sim.errors import SimMachineError
from harness.machines.sim.fleet import (
    Fleet,
    FleetClosed,
    FleetPlace,
    FleetResult,
    PowerButtons,
    power_on_delays,
    prepare_namespace,
)
from harness.machines.sim.machine import EmulatorSpec
from harness.machines.sim.timeline import EmulatorEvent, Timeline
from harness.signals import deferred

__all__ = ["MachineMirror", "ProcessFleet", "deal", "merge_results"]

#: seconds between two progress messages of a child
REPORT_EVERY = 0.15
_PR_SET_PDEATHSIG = 1


def deal(count: int, parts: int) -> list[list[int]]:
    """Machine indices 0..count-1 dealt in turn to ``parts`` hands (empty hands dropped):
    the firmware kinds of a scenario, listed group after group, spread over every child."""
    if parts < 1:
        raise SimMachineError(f"a fleet needs at least one process, not {parts}")
    hands = [list(range(k, count, parts)) for k in range(parts)]
    return [h for h in hands if h]


def merge_results(count: int, parts: Sequence[tuple[Sequence[int], FleetResult]]
                  ) -> FleetResult:
    """The children's results as one fleet's: machines back in the specs' order, counters
    summed, the wall time the longest child's."""
    machines: list[dict[str, Any] | None] = [None] * count
    for indices, result in parts:
        if len(indices) != len(result.machines):
            raise SimMachineError(f"a child reported {len(result.machines)} machines for "
                                  f"{len(indices)}")
        for index, machine in zip(indices, result.machines, strict=True):
            machines[index] = machine
    missing = [i for i, m in enumerate(machines) if m is None]
    if missing:
        raise SimMachineError(f"no result for machines {missing[:5]} (of {count})")
    done = [m for m in machines if m is not None]
    results = [r for _, r in parts]
    return FleetResult(
        machines=done,
        wall_seconds=max((r.wall_seconds for r in results), default=0.0),
        frames_sent=sum(r.frames_sent for r in results),
        frames_received=sum(r.frames_received for r in results),
        frames_dropped=sum(r.frames_dropped for r in results),
        kernel_drops=sum(r.kernel_drops for r in results),
        states=dict(Counter(m["state"] for m in done)),
    )


@dataclass
class _Ident:
    mac: str


@dataclass
class MachineMirror:
    """A machine of a child process as the parent last heard of it."""

    ident: _Ident
    timeline: Timeline
    state: str = "power-on"
    error: str | None = None
    finished: bool = False
    failed_starts: list[float] = field(default_factory=list)

    def apply(self, delta: tuple[str, list[EmulatorEvent], str | None, bool, list[float]]
              ) -> None:
        """Take one progress message: the new state, the events since the last one, the
        error, whether it finished, its failed boots' start times."""
        state, events, error, finished, failed_starts = delta
        self.timeline.events.extend(events)
        self.state, self.error, self.finished = state, error, finished
        self.failed_starts = failed_starts


# -- the child ---------------------------------------------------------------------------
def _die_with_parent() -> None:
    """SIGKILL this process when the thread that started it ends (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class _Reporter:
    """Sends a child's progress over its pipe: per machine only what changed."""

    def __init__(self, conn: Connection, fleet: Fleet) -> None:
        self.conn = conn
        self.fleet = fleet
        self.lock = threading.Lock()
        # per machine what was last sent: (state, events sent, error, finished, failed boots)
        self._last: list[tuple[Any, ...]] = []

    def send(self, message: tuple[Any, ...]) -> None:
        with self.lock:
            self.conn.send(message)

    def progress(self) -> None:
        """Send what changed since the last call (the loop and power requests both call)."""
        with self.lock:
            self._progress()

    def _progress(self) -> None:
        machines = self.fleet.machines
        self._last += [(None, 0)] * (len(machines) - len(self._last))
        deltas = []
        for i, m in enumerate(machines):
            events = m.timeline.events
            count = len(events)  # the fleet's thread appends meanwhile: read the length once
            error = str(m.error) if m.error else None
            key = (m.state, count, error, m.finished, len(m.failed_starts))
            if key == self._last[i]:
                continue
            sent = self._last[i][1]
            self._last[i] = key
            deltas.append((i, (m.state, events[sent:count], error, m.finished,
                               list(m.failed_starts))))
        if deltas:
            self.conn.send(("progress", deltas))


def _child_main(conn: Connection) -> None:
    """A child process: take its share, run a Fleet over it, report, obey power requests."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    try:
        place, specs, delays, options, timeout = conn.recv()
        fleet = Fleet.at(place, specs, delays, **options)
        fleet.start(timeout)
    except BaseException as exc:  # every failure goes to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    reporter = _Reporter(conn, fleet)
    reporter.send(("started",))

    def power(request: int, what: str, macs: list[str]) -> None:
        try:
            fleet.press(what, macs)
            outcome: str | None = None
        except FleetClosed as exc:
            outcome = f"closed: {exc}"
        except Exception as exc:  # the parent raises it
            outcome = f"{type(exc).__name__}: {exc}"
        reporter.progress()  # the parent sees the machine off (or on) before the answer
        reporter.send(("power", request, outcome))

    while fleet.running:  # then wait() below joins what is left of the fleet's thread
        if conn.poll(REPORT_EVERY):
            try:
                message = conn.recv()
            except EOFError:  # the parent is gone
                fleet.stop()
                break
            if message[0] == "stop":
                fleet.stop()
            elif message[0] == "power":
                threading.Thread(target=power, args=message[1:], daemon=True).start()
        reporter.progress()
    try:
        result = fleet.wait()
    except BaseException as exc:
        reporter.progress()
        reporter.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    reporter.progress()
    reporter.send(("result", result))


# -- the parent --------------------------------------------------------------------------
@dataclass
class _Child:
    number: int
    indices: list[int]
    process: subprocess.Popen[bytes]
    conn: Connection
    log: Path
    started: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    result: FleetResult | None = None
    error: str | None = None


class ProcessFleet(PowerButtons):
    """:class:`Fleet`'s interface over ``processes`` child processes (module docstring).

    Call :meth:`start` and :meth:`wait` (or :meth:`run`) from one thread: the children
    die with the thread that started them.
    """

    def __init__(self, lab: Lab, host: str, segment: str, specs: Sequence[EmulatorSpec], *,
                 processes: int, scale: float = 0.1, spread: float = 0.0,
                 ifprefix: str = "m", pin_neighbours: bool = False,
                 linger: bool = False) -> None:
        macs = [s.mac.lower() for s in specs]
        if len(set(macs)) != len(macs):
            raise SimMachineError("two machines share a MAC: give each machine its own")
        self.lab = lab
        self.host = host
        self.segment = segment
        self.specs = list(specs)
        self.hands = deal(len(self.specs), processes)
        self.scale = scale
        self.spread = spread
        self.ifprefix = ifprefix
        self.pin_neighbours = pin_neighbours
        self.linger = linger
        self.machines = [MachineMirror(_Ident(mac), Timeline(mac, spec.profile.name))
                         for mac, spec in zip(macs, self.specs, strict=True)]
        self._owner = {macs[i]: k for k, hand in enumerate(self.hands) for i in hand}
        self._children: list[_Child] = []
        self._requests = itertools.count()
        self._answers: dict[int, tuple[threading.Event, list[str | None]]] = {}
        self._lock = threading.Lock()
        self._timeout = 300.0
        self._closed = False

    # -- life ----------------------------------------------------------------------------
    def run(self, timeout: float = 300.0) -> FleetResult:
        """Boot every machine, wait for all to finish (or ``timeout``), return the results."""
        self.start(timeout)
        return self.wait()

    def start(self, timeout: float = 300.0) -> None:
        """Start the children; returns once every one has powered its machines on."""
        if self._children:
            raise SimMachineError("this fleet was already started: make a new ProcessFleet")
        self._timeout = timeout
        prepare_namespace(self.lab, self.host)
        place = FleetPlace.of(self.lab, self.host, self.segment, self.pin_neighbours)
        delays = power_on_delays(len(self.specs), self.spread)
        # the package this module is in, for a child started outside an installed tree
        root = str(Path(__file__).resolve().parents[3])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        try:
            for k, hand in enumerate(self.hands):
                mine, theirs = socket.socketpair()
                log = self.lab.temp_dir / f"fleet-{place.ns}-{k}.log"
                with open(log, "wb") as out, deferred():  # a Ctrl-C still finds the child
                    process = subprocess.Popen(
                        [sys.executable, "-m", "harness.machines.sim.procfleet", "--child",
                         str(theirs.fileno())],
                        pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=out,
                        stderr=subprocess.STDOUT, env=env)
                    child = _Child(k, hand, process, Connection(mine.detach()), log)
                    self._children.append(child)
                theirs.close()
                ifprefix = f"{self.ifprefix}{chr(ord('a') + k % 26)}{k // 26 or ''}"
                child.conn.send((place, [self.specs[i] for i in hand],
                                 [delays[i] for i in hand],
                                 {"scale": self.scale, "linger": self.linger,
                                  "ifprefix": ifprefix}, timeout))
                threading.Thread(target=self._read, args=(child,), name=f"fleet-reader-{k}",
                                 daemon=True).start()
            deadline = time.monotonic() + 120
            for child in self._children:
                while not child.started.wait(0.1):
                    if child.ended.is_set() or time.monotonic() > deadline:
                        raise SimMachineError(
                            f"fleet process {child.number} did not start: "
                            f"{child.error or 'no word within 120 s'}{_tail(child.log)}")
        except BaseException:
            self._kill()
            raise

    def wait(self, timeout: float | None = None) -> FleetResult:
        """Wait for every child to end; the merged results. A child that failed or died
        is an error naming it; no child is left running either way."""
        if not self._children:
            raise SimMachineError("the fleet was never started: call start() or run()")
        limit = (self._timeout + 60) if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            stopping = False
            while pending := [c for c in self._children if not c.ended.is_set()]:
                if not stopping and any(c.result is None for c in self._children
                                        if c.ended.is_set()):
                    self.stop()  # one child failed: the fleet's result is void, end the rest
                    stopping = True
                if time.monotonic() > deadline:
                    raise SimMachineError(f"fleet process {pending[0].number} did not "
                                          f"finish within {limit:.0f}s")
                pending[0].ended.wait(0.1)
            for child in self._children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(10)
            broken = [c for c in self._children if c.result is None]
            if broken:
                c = broken[0]
                raise SimMachineError(
                    f"fleet process {c.number} (pid {c.process.pid}) failed: "
                    f"{c.error or f'it exited with status {c.process.returncode}'}"
                    f"{_tail(c.log)}")
            return merge_results(len(self.specs),
                                 [(c.indices, c.result) for c in self._children
                                  if c.result is not None])
        finally:
            with self._lock:
                self._closed = True
            self._kill()

    def stop(self) -> None:
        """End every child now (any thread): machines still booting time out."""
        for child in self._children:
            with contextlib.suppress(OSError, ValueError):
                child.conn.send(("stop",))

    @property
    def running(self) -> bool:
        """True while power requests are taken."""
        with self._lock:
            return bool(self._children) and not self._closed and all(
                c.started.is_set() and not c.ended.is_set() for c in self._children)

    def machine(self, mac: str) -> MachineMirror:
        """The mirror of the machine with ``mac``."""
        for m in self.machines:
            if m.ident.mac == mac.lower():
                return m
        raise KeyError(mac)

    # -- power buttons -------------------------------------------------------------------
    def press(self, what: str, macs: Sequence[str], timeout: float = 30.0) -> None:
        """See :class:`PowerButtons`: sent to the child that owns each machine."""
        by_child: dict[int, list[str]] = {}
        for mac in macs:
            if mac.lower() not in self._owner:
                raise KeyError(mac)
            by_child.setdefault(self._owner[mac.lower()], []).append(mac.lower())
        waits = []
        with self._lock:
            if self._closed or not self._children:
                raise FleetClosed("the fleet is not running: power machines on in a new fleet")
            for k, group in by_child.items():
                child = self._children[k]
                if child.ended.is_set():
                    raise FleetClosed(f"fleet process {k} has ended")
                request = next(self._requests)
                box: list[str | None] = []
                done = threading.Event()
                self._answers[request] = (done, box)
                child.conn.send(("power", request, what, group))
                waits.append((done, box, child))
        for done, box, child in waits:
            deadline = time.monotonic() + timeout
            while not done.wait(0.1):
                if child.ended.is_set():
                    raise FleetClosed(f"fleet process {child.number} ended before the power "
                                      "request ran")
                if time.monotonic() > deadline:
                    raise SimMachineError(f"power {what} of {', '.join(macs)} took over "
                                          f"{timeout:.0f}s")
            outcome = box[0] if box else None
            if outcome is not None and outcome.startswith("closed: "):
                raise FleetClosed(outcome.removeprefix("closed: "))
            if outcome is not None:
                raise SimMachineError(f"power {what}: {outcome}")

    # -- the children's messages ---------------------------------------------------------
    def _read(self, child: _Child) -> None:
        try:
            while True:
                try:
                    message = child.conn.recv()
                except (EOFError, OSError):
                    return
                kind = message[0]
                if kind == "progress":
                    for index, delta in message[1]:
                        self.machines[child.indices[index]].apply(delta)
                elif kind == "started":
                    child.started.set()
                elif kind == "power":
                    done, box = self._answers.pop(message[1])
                    box.append(message[2])
                    done.set()
                elif kind == "result":
                    child.result = message[1]
                elif kind == "error":
                    child.error = message[1]
        finally:
            child.ended.set()

    def _kill(self) -> None:
        """Stop every child by PID (asked first, then SIGKILL) and reap it."""
        for child in self._children:
            process = child.process
            if process.poll() is None:
                with contextlib.suppress(OSError, ValueError):
                    child.conn.send(("stop",))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            if process.poll() is None:
                process.kill()
                process.wait(5)
            with contextlib.suppress(OSError):
                child.conn.close()


def _tail(log: Path, lines: int = 12) -> str:
    """The end of a child's output, for an error about it ('' when it said nothing)."""
    try:
        text = log.read_text(errors="replace").strip()
    except OSError:
        return ""
    return "\n" + "\n".join(text.splitlines()[-lines:]) if text else ""


if __name__ == "__main__":  # a child: python -m harness.machines.sim.procfleet --child FD
    if len(sys.argv) != 3 or sys.argv[1] != "--child" or not sys.argv[2].isdigit():
        sys.exit("usage: python -m harness.machines.sim.procfleet --child FD "
                 "(started by ProcessFleet, not by hand)")
    _child_main(Connection(int(sys.argv[2])))
