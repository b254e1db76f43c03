"""bench.service_cpu: what each lab service cost, from a /proc the test writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.service_cpu import ServiceCpu, classify, process_ticks

pytestmark = pytest.mark.unit
TICK = os.sysconf("SC_CLK_TCK")


def _proc(root: Path, pid: int, cmdline: str, utime: int, stime: int, start: int = 100,
          comm: str = "python3") -> None:
    d = root / str(pid)
    d.mkdir(exist_ok=True)
    rest = ["S", "1"] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 6 + [str(start), "0"]
    (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(rest) + "\n")
    (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")


def test_fields_are_counted_from_the_last_parenthesis() -> None:
    rest = ["S", "1"] + ["0"] * 9 + ["7", "5"] + ["0"] * 8
    assert process_ticks("12 (a) b (c)) " + " ".join(rest)) == 12


def test_services_are_told_by_their_command_line() -> None:
    # the fork server that starts it, and its child that serves, both count
    assert classify(b"/v/python\0-m\0harness.forkserver.server\0controlplane\0") == (
        "control plane")
    assert classify(b"python3\0-m\0controlplane\0--listen\0:0\0") == "control plane"
    assert classify(b"python3\0-m\0bootproxy\0--name\0bp1\0") == "boot proxy"
    assert classify(b"/usr/sbin/dnsmasq\0--keep-in-foreground\0") == "site dnsmasq"
    assert classify(b"bash\0-c\0make\0") is None


def test_each_service_is_charged_what_it_used_while_sampled(tmp_path: Path) -> None:
    _proc(tmp_path, 10, "/usr/sbin/dnsmasq --x", 50 * TICK, 10 * TICK)  # running before
    _proc(tmp_path, 11, "bash -c sleep", 1, 1)
    (tmp_path / "self").mkdir()  # not a PID
    cpu = ServiceCpu(proc=tmp_path)
    cpu.sample(first=True)
    _proc(tmp_path, 10, "/usr/sbin/dnsmasq --x", 51 * TICK, 11 * TICK)
    _proc(tmp_path, 20, "runc init", 0, 0, start=200)  # the container's process, then...
    cpu.sample()
    _proc(tmp_path, 20, "python3 -m bootproxy --name bp1", 3 * TICK, TICK, start=200)
    _proc(tmp_path, 11, "bash -c sleep", 90 * TICK, 0)
    cpu.sample()
    # the same PID, another process (another start time): counted on its own
    _proc(tmp_path, 20, "python3 -m bootproxy --name bp1", TICK, 0, start=300)
    cpu.sample()
    assert cpu.seconds() == {"boot proxy": 5.0, "site dnsmasq": 2.0}


def test_the_sampler_stops_and_keeps_the_last_reading(tmp_path: Path) -> None:
    _proc(tmp_path, 30, "tcpdump -i br-lan", 0, 0)
    with ServiceCpu(interval=0.01, proc=tmp_path) as cpu:
        _proc(tmp_path, 30, "tcpdump -i br-lan", 2 * TICK, 0)
    assert cpu.seconds() == {"capture": 2.0}
