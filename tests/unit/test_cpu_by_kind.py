"""scripts/cpu-by-kind.py: processes sorted into kinds, and only CPU used while the command
ran is counted (a process already running gives only what it used since)."""

from __future__ import annotations

from pathlib import Path

import pytest
from script_module import load_script

pytestmark = pytest.mark.unit

cpu_by_kind = load_script("scripts/cpu-by-kind.py", "cpu_by_kind")


@pytest.mark.parametrize(("cmdline", "cgroup", "kind"), [
    ("/usr/bin/qemu-system-x86_64 -name guest=fl1-bios", "0::/", "qemu (VMs)"),
    ("python3 -m bootproxy --name bp1", "12:cpuacct:/docker/0123abcd", "containers"),
    ("python3 -m bootproxy --name bp1", "12:cpuacct:/", "boot proxy processes"),
    (".venv/bin/python -c import sys;exec(eval(sys.stdin.readline()))", "0::/",
     "pytest workers"),
    (".venv/bin/python .venv/bin/mypy", "0::/", "mypy"),
    ("/usr/sbin/dnsmasq --keep-in-foreground", "0::/", "dnsmasq"),
    ("ip -n fl1-lan link del tap0", "0::/", "other processes"),
])
def test_a_process_gets_the_first_matching_kind(cmdline: str, cgroup: str, kind: str) -> None:
    assert cpu_by_kind.kind_of(cmdline, cgroup).startswith(kind)


def _process(proc: Path, pid: int, cmdline: str, utime: int, started: int = 100,
             comm: str = "x y") -> None:
    """A /proc/<pid> with what the sampler reads: stat (name, utime, stime, start time),
    cmdline, cgroup. Field 14 of stat is utime in clock ticks, 15 stime, 22 the start time."""
    d = proc / str(pid)
    d.mkdir(exist_ok=True)
    after_name = ["S"] + ["0"] * 10 + [str(utime), "0"] + ["0"] * 6 + [str(started)]
    (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(after_name) + " 0 0\n")
    (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode())
    (d / "cgroup").write_text("0::/\n")


def test_only_the_cpu_used_after_the_start_counts(tmp_path: Path) -> None:
    """A process already running counts only what it used after the start; one that ends
    keeps its last sample; a pid reused by a new process is a new process."""
    ticks = cpu_by_kind.TICKS
    _process(tmp_path, 10, "qemu-system-x86_64 -name a", 5 * ticks)
    sampler = cpu_by_kind.Sampler(tmp_path)
    sampler.start()
    _process(tmp_path, 10, "qemu-system-x86_64 -name a", 7 * ticks)     # +2 s
    _process(tmp_path, 11, "/usr/sbin/dnsmasq -k", 3 * ticks)            # new: 3 s
    sampler.sample()
    (tmp_path / "11" / "stat").unlink()                                  # dnsmasq ended
    _process(tmp_path, 10, "qemu-system-x86_64 -name b", 1 * ticks, started=900)  # reused
    sampler.sample()
    assert sampler.by_kind() == {"qemu (VMs)": 3.0, "dnsmasq": 3.0}


def test_a_process_that_execs_is_counted_as_what_it_became(tmp_path: Path) -> None:
    """libvirtd forks, and the child execs QEMU: seen first as "libvirtd", then as
    qemu-system with all of QEMU's CPU. Its CPU is QEMU's (the kind of its last name),
    not libvirtd's, however early the first sample caught it."""
    ticks = cpu_by_kind.TICKS
    sampler = cpu_by_kind.Sampler(tmp_path)
    sampler.start()
    _process(tmp_path, 20, "/usr/sbin/libvirtd --daemon", 0, comm="libvirtd")
    sampler.sample()
    _process(tmp_path, 20, "/usr/bin/qemu-system-x86_64 -name guest=a", 40 * ticks,
             comm="qemu-system-x86")
    sampler.sample()
    assert sampler.by_kind() == {"qemu (VMs)": 40.0}
