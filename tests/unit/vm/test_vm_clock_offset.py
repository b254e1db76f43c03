"""A machine's facts.clock_skew_s starts its VM's RTC that far off: libvirt's
<clock offset='variable' basis='utc' adjustment=N> (QEMU -rtc base=UTC+N). Without a
skew the domain keeps offset='utc'."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.machines.vm import DomainSpec, Nic

pytestmark = pytest.mark.unit


def clock_of(**fields: object) -> dict[str, str]:
    spec = DomainSpec(lab_id="fl3k9", machine="n1",
                      nics=(Nic(tap="fl3k9-n1-0", mac="52:54:00:3a:00:01"),),
                      serial_log=Path("n1.serial.log"), **fields)  # type: ignore[arg-type]
    clock = ET.fromstring(spec.to_xml()).find("clock")
    assert clock is not None
    return dict(clock.attrib)


@pytest.mark.parametrize("offset", [4, -3, 3600])
def test_a_skewed_machine_starts_its_rtc_off_utc(offset: int) -> None:
    assert clock_of(clock_offset_s=offset) == {
        "offset": "variable", "basis": "utc", "adjustment": str(offset)}


def test_an_unskewed_machine_keeps_utc() -> None:
    assert clock_of() == {"offset": "utc"}
    assert clock_of(clock_offset_s=0) == {"offset": "utc"}
