"""The sim tier's machine driver: the firmware emulators (harness/machines/sim) behind the
runner's :class:`MachineDriver` interface.

Each power-on step starts one :class:`Fleet` per segment in a background
thread (the emulators are asyncio, all machines of a fleet share one loop and
one raw socket); progress is read from the live machines. Fleets linger until
:meth:`SimDriver.close`, so ``power_off`` cuts a machine inside its fleet and a
later ``power_on`` (or the runner's ``reset`` = off + on) boots the same machine
again from firmware, its timeline continuing.

Emulated firmware never gives up (retry.py): a machine that found no boot reboots
and tries the network again, as SeaBIOS and OVMF with a boot order do, until the
run ends. A copy that keeps failing counts as finished for the runner once every
step was played and it failed :data:`QUIET_BOOTS` boots since (``retry.settled``):
its error then says it was still retrying.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from dataclasses import dataclass

from harness.errors import FlexlabError
from harness.lab import Lab
from harness.machines.sim.agent import Disk, NodeFacts
from harness.machines.sim.fleet import Fleet, FleetClosed
from harness.machines.sim.machine import EmulatorSpec, SimMachine
from harness.machines.sim.procfleet import MachineMirror, ProcessFleet
from harness.machines.sim.profiles import profile
from harness.machines.sim.retry import settled, still_retrying
from harness.machines.sim.timeline import EmulatorEvent
from harness.scenario.drivers import MachinePlan, MachineProgress, TimelineEvent
from harness.scenario.model import Scenario
from harness.wait import wait_until

# steps that only start boots of the machines they name (the runner plays a reset as
# power_off + power_on of those same machines)
BOOT_STARTING_STEPS = frozenset({"power_on", "reset"})

# scenario firmware names -> emulator profiles
PROFILE_OF = {
    "seabios-ipxe": "ipxe-bios",
    "bios-pxe": "pxe-bios",
    "uefi-x64": "edk2-x64",
    "uefi-http": "edk2-http",
    "intel-no97": "intel-no97",
    "hw-client": "hw-client",
}
FINAL = ("done", "failed", "ready", "rejected")  # plus "off" after a power cut
#: firmware boot tries per power-on: None, forever (a failed boot reboots into PXE again)
BOOT_ATTEMPTS: int | None = None


def node_facts(plan: MachinePlan) -> NodeFacts:
    """The emulated agent's report, from the scenario's facts."""
    f = plan.facts
    disks = (Disk("vda", int(f.disk_gb * 10**9)),) if f.disk_gb else ()
    return NodeFacts(arch=f.arch, cpu_cores=f.cores, memory_bytes=int(f.memory_gb * 10**9),
                     disks=disks, clock_skew=f.clock_skew_s)


Watched = SimMachine | MachineMirror
"""A machine as the driver reads it: live in this process, or mirrored from a child."""

#: how many processes one power-on step's machines on one segment are dealt to
#: (harness/machines/sim/procfleet.py); a property of the host running the tests, not of
#: the scenario, so it is set in the environment, not in the scenario file
PROCESSES_ENV = "FLEXLAB_FLEET_PROCESSES"


def fleet_processes() -> int:
    """``FLEXLAB_FLEET_PROCESSES`` (default 1: every machine on one loop, in this process)."""
    raw = os.environ.get(PROCESSES_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise FlexlabError(f"{PROCESSES_ENV}={raw!r}: give a whole number of processes, "
                           "1 or more (e.g. the host's core count)")
    return int(raw)


@dataclass
class _Run:
    fleet: Fleet | ProcessFleet
    thread: threading.Thread
    error: BaseException | None = None


def _started(run: _Run) -> bool:
    """The fleet takes power requests, or it already ended (its error is in progress())."""
    return run.fleet.running or not run.thread.is_alive()


class SimDriver:
    """Emulated machines: many per segment, one fleet per power-on step and segment."""

    kind = "sim"

    def __init__(self, lab: Lab, scenario: Scenario) -> None:
        self.lab = lab
        self.scale = scenario.time_scale
        self.timeout = scenario.timeout
        self.processes = fleet_processes()
        self.plans: dict[str, MachinePlan] = {}
        self.runs: list[_Run] = []
        self._where: dict[str, tuple[_Run, int]] = {}
        self._history: dict[str, list[TimelineEvent]] = {}  # boots in fleets that ended
        # per copy: its live machine's events converted so far and the proxies that answered;
        # a poll converts only what came since (1,000 machines' whole timelines every 0.2 s
        # held the GIL long enough to starve the fleets' event loops)
        self._seen: dict[str, tuple[Watched, list[TimelineEvent], set[str]]] = {}
        self._count = 0
        # when the run's clock (the runner's ``at``) was 0, on this host's monotonic clock
        self._origin: float | None = None
        self._last_at = max((step.at for step in scenario.steps), default=0.0)
        # When every step at the last step's time only starts boots, the world is final once
        # the first of them is played, and the boots they start are its first boots (see
        # _note_steps_played). Steps run in time order (the scenario checks refuse others),
        # so that is the power_on call numbered here (None: the poll rule applies).
        starts_boots = [getattr(s, "action", None) in BOOT_STARTING_STEPS
                        for s in scenario.steps]
        last = [b for s, b in zip(scenario.steps, starts_boots, strict=True)
                if s.at == self._last_at]
        self._final_power_on: int | None = (
            sum(starts_boots) - len(last) + 1 if last and all(last) else None)
        self._power_on_calls = 0
        # monotonic time by which every step had certainly been played (None: not yet)
        self._due_seen: float | None = None
        self.quiet_since: float | None = None

    def add(self, plans: list[MachinePlan]) -> None:
        """Declare machine copies; unknown firmware for the sim tier is an error now."""
        for plan in plans:
            if plan.firmware not in PROFILE_OF:
                raise FlexlabError(f"machine {plan.key}: firmware {plan.firmware!r} exists only "
                                   "in the vm tier (run with --tier vm)")
            self.plans[plan.key] = plan

    def power_on(self, keys: list[str], at: float) -> None:
        """Boot these copies: again in their own fleet if they had one, else in a new fleet
        per segment (a copy that is already on is left alone, as a power button would)."""
        if self._origin is None:
            self._origin = time.monotonic() - at
        self._power_on_calls += 1
        if self.quiet_since is None and self._power_on_calls == self._final_power_on:
            # every step before this one has been played and the rest only start boots:
            # the boots they start meet the final world (a power-on at 0 is a whole scenario)
            self.quiet_since = time.monotonic()
        by_segment: dict[tuple[str, str], list[MachinePlan]] = {}
        for key in keys:
            plan = self.plans[key]
            where = self._where.get(key)
            if where is not None:
                run, index = where
                try:
                    run.fleet.power_on([plan.mac])
                    continue
                except FleetClosed:  # that fleet ended (its timeout): keep the record
                    self._history[key] = self._history.get(key, []) + self._timeline(
                        run.fleet.machines[index])
                    self._seen.pop(key, None)
            by_segment.setdefault((plan.attach_host, plan.segment), []).append(plan)
        for (host, segment), plans in by_segment.items():
            # firmware that finds no boot retries after a reboot, as real BIOSes do
            specs = [EmulatorSpec(mac=p.mac, profile=profile(PROFILE_OF[p.firmware]),
                                 facts=node_facts(p), boot_attempts=BOOT_ATTEMPTS)
                     for p in plans]
            self._count += 1
            processes = min(self.processes, len(specs))
            fleet: Fleet | ProcessFleet
            if processes > 1:
                fleet = ProcessFleet(self.lab, host, segment, specs, processes=processes,
                                     scale=self.scale, ifprefix=f"f{self._count}m",
                                     linger=True)
            else:
                fleet = Fleet(self.lab, host, segment, specs, scale=self.scale,
                              ifprefix=f"f{self._count}m", linger=True)
            run = _Run(fleet, threading.Thread(target=lambda: None))

            def main(run: _Run = run) -> None:
                try:
                    run.fleet.run(timeout=self.timeout)
                except BaseException as exc:  # reported through progress()
                    run.error = exc

            run.thread = threading.Thread(target=main, name=f"sim-fleet-{self._count}",
                                          daemon=True)
            self.runs.append(run)
            for index, plan in enumerate(plans):
                self._where[plan.key] = (run, index)
            run.thread.start()
            # power_off right after this step must find the machines on their loop
            wait_until(functools.partial(_started, run), timeout=60, interval=0.01,
                       what=f"fleet {self._count} on {segment} to start")

    def power_off(self, keys: list[str]) -> None:
        """Cut these copies' power; returns when each is off (sends nothing any more)."""
        for key in keys:
            where = self._where.get(key)
            if where is None:
                continue  # never powered on: already off
            with contextlib.suppress(FleetClosed):  # its fleet ended: nothing of it runs
                where[0].fleet.power_off([self.plans[key].mac])

    def progress(self) -> dict[str, MachineProgress]:
        """Live state of every declared copy."""
        self._note_steps_played()
        out: dict[str, MachineProgress] = {}
        for key in self.plans:
            prog = MachineProgress(key)
            where = self._where.get(key)
            if where is not None:
                run, index = where
                machines = run.fleet.machines
                if index < len(machines):
                    m = machines[index]
                    prog.phase = m.state
                    events, answered = self._follow(key, m)
                    prog.timeline = self._history.get(key, []) + events
                    prog.answered_by = sorted(answered)
                    prog.error = str(m.error) if m.error else None
                    prog.finished = m.finished or m.state in FINAL
                    if (not prog.finished and m.error is not None
                            and settled(m.failed_starts, self.quiet_since)):
                        prog.finished, prog.phase = True, "failed"
                        prog.error = still_retrying(str(m.error), len(m.failed_starts))
                else:
                    prog.phase = "power-on"
                if not run.thread.is_alive():
                    prog.finished = True
                    if run.error is not None:
                        prog.error = f"{type(run.error).__name__}: {run.error}"
                        prog.phase = "failed"
            out[key] = prog
        return out

    def _note_steps_played(self) -> None:
        """Set :attr:`quiet_since` once every scenario step has been played.

        The runner plays the steps that are due, then polls :meth:`progress`: the first
        poll at or after the last step's time may come just before that step is played
        (its loop read the clock a moment earlier), the poll after it cannot. Boots that
        start from then on meet the scenario's final world.

        When the last steps are power-ons, :meth:`power_on` sets it instead, the moment it
        is asked to play one of them: those steps change no one's world but start boots, and
        waiting for the next poll left out the very boots they started (a whole failed boot
        cycle more before the run stopped watching: 17 s for an emulated OVMF at scale 0.25).
        """
        if self.quiet_since is not None or self._origin is None:
            return
        now = time.monotonic()
        if self._due_seen is not None:
            self.quiet_since = now
        elif now - self._origin >= self._last_at:
            self._due_seen = now

    def _follow(self, key: str, m: Watched) -> tuple[list[TimelineEvent], set[str]]:
        """Copy ``key``'s live machine's events and the proxies that answered it, converting
        only the events added since the last poll (its timeline only grows)."""
        cached = self._seen.get(key)
        if cached is None or cached[0] is not m:
            cached = self._seen[key] = (m, [], set())
        _, events, answered = cached
        new = m.timeline.events[len(events):]  # the fleet thread appends meanwhile: a slice
        for e in new:
            if e.kind == "received" and e.detail.get("proxy") and e.detail.get("pxe"):
                answered.add(str(e.detail.get("src_ip")))
        events.extend(self._convert(new))
        return list(events), answered

    @staticmethod
    def _timeline(m: Watched) -> list[TimelineEvent]:
        return SimDriver._convert(list(m.timeline.events))

    @staticmethod
    def _convert(events: list[EmulatorEvent]) -> list[TimelineEvent]:
        return [
            TimelineEvent(e.t, e.kind, e.summary,
                          peer=str(e.detail.get("src_ip") or e.detail.get("server")
                                   or "") or None,
                          detail=dict(e.detail))
            for e in events
        ]

    def close(self) -> None:
        """Stop the fleets (they linger for power buttons) and wait so nothing is left running."""
        for run in self.runs:
            run.fleet.stop()
        for run in self.runs:
            run.thread.join(self.timeout + 90)
