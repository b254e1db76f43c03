"""The node agent's time sync from ``flexlab.timeurl`` (a site without NTP), run with the
agent's own shell functions under busybox against a real HTTP time source on loopback.

The guest clock is this host's clock plus an offset kept in a file: ``now_unix`` reads
it, and ``date -s`` (a stand-in, so the host's clock is never set) moves it, optionally
late by a delay, as a TCG guest held up on a starved host sets it late. What is
judged is where the guest clock really ends, not what the agent says about it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from agentsh import agent_functions, agent_settings
from httptimefake import TimeServer, busybox_path, time_server

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120),
              pytest.mark.needs_binary("busybox", how="apt-get install busybox-static")]

# the guest clock: the host's (the agent's own now_unix, renamed) plus guest.off; the
# step stand-in sets guest.off so the guest clock reads @T, after the next delay of
# step.late (one per line, consumed; none: 0), or not at all with step.stuck present
_GUEST_CLOCK = """
now_unix() {
    awk -v h="$(host_unix)" -v o="$(cat guest.off)" 'BEGIN {printf "%.6f", h + o}'
}
date() {
    [ "$1 $2" = "-u -s" ] || { echo "unexpected date $*" >&2; return 2; }
    late=$(head -n1 step.late 2>/dev/null); sed -i 1d step.late 2>/dev/null
    sleep "${late:-0}"
    echo "${3#@}" >> steps.log
    [ -e step.stuck ] && return 0
    awk -v t="${3#@}" -v h="$(host_unix)" 'BEGIN {printf "%.6f", t - h}' > guest.off
}
"""


def _run(tmp_path: Path, srv: TimeServer, guest_off: float, *, late: list[float] = (),
         stuck: bool = False, timeurl_path: str = "/api/v1/time",
         then_check: bool = False) -> tuple[str, float, int]:
    """sync_time (then check_clock) with the guest clock `guest_off` s off this host's;
    the console, where the guest clock ended (its offset from the source) and the steps
    the stand-in made."""
    busybox = shutil.which("busybox")
    assert busybox
    (tmp_path / "guest.off").write_text(f"{guest_off:.6f}")
    if late:
        (tmp_path / "step.late").write_text("".join(f"{d}\n" for d in late))
    if stuck:
        (tmp_path / "step.stuck").write_text("")
    host_unix = agent_functions("now_unix").replace("now_unix() {", "host_unix() {", 1)
    script = (agent_settings("CLOCK_TRIES", "CLOCK_LIMIT_S", "SYNC_GOOD_S", "SYNC_STEPS")
              + host_unix + _GUEST_CLOCK
              + agent_functions("log", "json_str", "http", "measure_http", "step_clock",
                                "sync_time", "check_clock")
              + f"CP={srv.url}\nTIMEURL={srv.url}{timeurl_path}\nCLOCK_FACTS=\n"
              + 'sync_time; echo "sync rc=$?"\n'
              + ('check_clock; echo "check rc=$?"\n' if then_check else ""))
    out = subprocess.run([busybox, "sh", "-c", script], capture_output=True, text=True,
                         timeout=100, env={"PATH": busybox_path(tmp_path)}, cwd=tmp_path)
    console = out.stdout + out.stderr
    assert "unexpected date" not in console, console
    ended = float((tmp_path / "guest.off").read_text()) - srv.ahead
    steps_log = tmp_path / "steps.log"
    steps = len(steps_log.read_text().splitlines()) if steps_log.exists() else 0
    return console, ended, steps


def _timesync_line(console: str) -> re.Match[str]:
    found = re.search(r"FLEXLAB-AGENT: timesync source=\S+ skew=(-?[0-9.]+) steps=(\d) "
                      r"residual=(-?[0-9.]+) error=([0-9.]+) (ok|off)\n", console)
    assert found, console
    return found


@pytest.mark.parametrize("guest_off", [-0.9, 2.6, -40.0])
def test_a_clock_off_is_stepped_onto_the_source(tmp_path: Path, guest_off: float) -> None:
    """Behind as QEMU's RTC leaves a VM, ahead, or far off: one step brings the guest
    clock within SYNC_GOOD_S of the source, and the measurement after it says so."""
    with time_server(0.0, [0.0]) as srv:
        console, ended, steps = _run(tmp_path, srv, guest_off)
    assert abs(ended) <= 0.5, (ended, console)
    found = _timesync_line(console)
    assert found.group(5) == "ok" and "sync rc=0" in console, console
    assert int(found.group(2)) == steps >= 1, console
    assert abs(float(found.group(1)) - guest_off) <= 0.3, console
    # the residual reported is the guest clock's, to within its bound
    assert abs(float(found.group(3)) - ended) <= float(found.group(4)) + 0.05, console


def test_a_late_step_is_found_and_the_clock_stepped_again(tmp_path: Path) -> None:
    """The guest is held up 1.8 s between waking and setting its clock, so the first
    step leaves it 1.8 s behind (a VM was Rejected so, right after its one step). The
    measurement after the step finds it, and a second step puts it right."""
    with time_server(0.0, [0.0]) as srv:
        console, ended, steps = _run(tmp_path, srv, -0.9, late=[1.8])
    assert abs(ended) <= 0.5, (ended, console)
    found = _timesync_line(console)
    assert found.group(5) == "ok" and steps == int(found.group(2)) == 2, console
    assert srv.served >= 3, console


def test_a_clock_already_on_the_source_is_not_stepped(tmp_path: Path) -> None:
    """Within SYNC_GOOD_S at once, bound included: no step (each costs up to a second of
    waiting for the whole second), one exchange."""
    with time_server(0.0, [0.0]) as srv:
        console, ended, steps = _run(tmp_path, srv, 0.05)
    assert steps == 0 and srv.served == 1, console
    found = _timesync_line(console)
    assert found.group(2) == "0" and found.group(5) == "ok", console
    assert abs(ended - 0.05) < 0.01


def test_a_clock_that_will_not_step_is_given_up_on(tmp_path: Path) -> None:
    """A clock the step does not move (SYNC_STEPS steps later still 3 s behind) ends the
    sync as "off", failed, with a measurement after each step and none beyond."""
    with time_server(0.0, [0.0]) as srv:
        console, ended, steps = _run(tmp_path, srv, -3.0, stuck=True)
    settings = dict(line.split("=", 1) for line in
                    agent_settings("SYNC_STEPS").splitlines())
    limit = int(settings["SYNC_STEPS"])
    assert steps == limit and srv.served == limit + 1, console
    found = _timesync_line(console)
    assert found.group(5) == "off" and "sync rc=1" in console, console
    assert abs(ended - -3.0) < 0.01


def test_a_source_that_does_not_answer_leaves_the_clock(tmp_path: Path) -> None:
    with time_server(0.0, [0.0]) as srv:
        pass
    console, ended, steps = _run(tmp_path, srv, -0.9)
    assert steps == 0 and abs(ended - -0.9) < 0.01
    assert "FLEXLAB-AGENT: timesync failed reason=" in console and "sync rc=1" in console


@pytest.mark.parametrize(("timeurl_path", "stuck", "asks_again"), [
    ("/api/v1/time", False, False),   # the Control Plane's time, synced: its last measure
    ("/elsewhere/time", False, True),  # another source: the Control Plane is asked
    ("/api/v1/time", True, True),      # synced from it but given up: asked again
])
def test_the_clock_check_reports_the_syncs_last_measurement_only_when_it_holds(
        tmp_path: Path, timeurl_path: str, stuck: bool, asks_again: bool) -> None:
    """The sync's last measurement is after its last step and against the Control
    Plane's own time: the check reports it rather than ask again. Against another
    source, or when the sync gave up, the check measures for itself."""
    with time_server(0.0, [0.0]) as srv:
        console, _ended, _steps = _run(tmp_path, srv, -0.9, stuck=stuck,
                                       timeurl_path=timeurl_path, then_check=True)
        served_by_sync = int(_timesync_line(console).group(2)) + 1
    assert "check rc=0" in console, console
    clock = re.search(r"FLEXLAB-AGENT: clock local=\S+ cp=\S+ skew=(-?[0-9.]+) error=\S+ "
                      r"tries=(\d) (ok|off)\n", console)
    assert clock, console
    assert (srv.served > served_by_sync) == asks_again, console
    if not asks_again:
        assert clock.group(1) == _timesync_line(console).group(3)
