"""bench/vmboot.py's console follower: marks stamped as lines appear, kernel clock zero."""

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.vmboot import ConsoleFollower, console_split, write_console

pytestmark = pytest.mark.unit


def _runner(serial: Path) -> SimpleNamespace:
    vm = SimpleNamespace(spec=SimpleNamespace(serial_log=serial))
    return SimpleNamespace(driver=SimpleNamespace(vms={"uefi": vm}))


def _wait(pred: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the follower did not catch up"
        time.sleep(0.01)


def test_marks_are_stamped_when_their_lines_appear(tmp_path: Path) -> None:
    serial = tmp_path / "uefi.serial.log"
    follower = ConsoleFollower(_runner(serial), "uefi", poll_s=0.01)  # type: ignore[arg-type]
    with follower:
        serial.write_text(">>Start PXE over IPv4.\n")
        _wait(lambda: "pxe" in follower.marks)
        time.sleep(0.1)
        with serial.open("a") as fh:
            fh.write("  NBP file downloaded successfully.\n[    2.500000] Run /init as init")
        _wait(lambda: "init" in follower.marks)
        with serial.open("a") as fh:
            fh.write(" process\n")  # the line ends: now its printk time counts
        _wait(lambda: follower.kernel_start is not None)
    assert follower.marks["nbp_downloaded"] - follower.marks["pxe"] >= 0.1
    assert "ready" not in follower.marks
    assert follower.kernel_start is not None
    assert follower.kernel_start == pytest.approx(follower.marks["init"] - 2.5, abs=0.5)
    # every whole line is kept with its arrival, in order; the first two arrived apart
    assert [line for _, line in follower.lines] == [
        ">>Start PXE over IPv4.", "  NBP file downloaded successfully.",
        "[    2.500000] Run /init as init process"]
    assert follower.lines[1][0] - follower.lines[0][0] >= 0.1


def test_the_console_log_stamps_each_line_after_power_on(tmp_path: Path) -> None:
    out = tmp_path / "logs" / "bios-1.log"
    write_console(out, [(101.25, "iPXE initialising devices...ok\r"), (103.5, "Linux")], 100.0)
    assert out.read_text() == ("    1.25  iPXE initialising devices...ok\n"
                               "    3.50  Linux\n")


def test_console_split_orders_marks_and_adds_kernel_clock_zero() -> None:
    marks = {"init": 130.0, "first_output": 102.0, "pxe": 110.0}
    split = console_split(marks, power_on=100.0, kernel_start=125.0)
    assert list(split) == ["first_output", "pxe", "init", "kernel_clock_zero"]
    assert split == {"first_output": 2.0, "pxe": 10.0, "init": 30.0, "kernel_clock_zero": 25.0}
