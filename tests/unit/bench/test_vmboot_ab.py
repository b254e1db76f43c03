"""bench/vmboot_ab.py: a boot that never got Ready is counted apart, never as a time."""

from __future__ import annotations

from typing import Any

import pytest

from bench.vmboot_ab import main, summarise

pytestmark = pytest.mark.unit


def test_a_boot_not_ready_is_counted_apart_not_as_a_time() -> None:
    boots: list[dict[str, Any]] = [
             {"ready_s": 9.0, "verdict": "pass", "console_s": {"init": 4.0, "ready": 9.0}},
             {"ready_s": None, "verdict": "fail", "console_s": {"init": 30.0}},
             {"ready_s": 11.0, "verdict": "pass", "console_s": {"init": 5.0, "ready": 11.0}}]
    s = summarise(boots)
    assert s["ready_s"] == {"median": 10.0, "min": 9.0, "max": 11.0, "n": 2}
    assert s["boots_not_ready"] == 1
    assert s["verdicts"] == ["pass", "fail", "pass"]
    # each mark's median over the boots that reached it
    assert s["console_s_median"] == {"init": 5.0, "ready": 10.0}


def test_unknown_machines_and_shared_names_are_refused(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    with pytest.raises(SystemExit):
        main(["--config", "a=.", "--machine", "arm", "--results", "/dev/null"])
    assert "--machine takes bios, uefi" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", "a=.", "--config", "a=.", "--results", "/dev/null"])
    assert "share a name" in capsys.readouterr().err
