"""Parsing the node agent's console lines and waiting for them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from harness.machines.vm.console import (
    ConsoleTimeout,
    agent_events,
    parse_agent_line,
    wait_for_event,
)

pytestmark = pytest.mark.unit

# Lines as the real image printed them (QEMU TCG run, see docs/NODEIMAGE.md).
CONSOLE = """\
[    0.000000] Linux version 6.1.0-56-amd64
FLEXLAB-AGENT: init kernel=6.1.0-56-amd64
FLEXLAB-AGENT: start cp=http://10.99.0.1:8080 mac=52:54:00:aa:bb:01
FLEXLAB-AGENT: disk dev=vda size_bytes=12884901888 mount=/mnt/data data=intact boots=4
FLEXLAB-AGENT: facts {"arch":"x86_64","cpu_cores":2,"memory_bytes":1007087616,"disks":[],\
"nics":[],"firmware":"bios","vendor":"QEMU Standard PC (i440FX + PIIX, 1996); bios SeaBIOS"}
FLEXLAB-AGENT: dhcp ok nic=eth0 ip=10.99.0.48 subnet=255.255.255.0 router=10.99.0.1
FLEXLAB-AGENT: clock local=1795644997.822698 cp=1795644997.802094 skew=0.021 ok
FLEXLAB-AGENT: registered state=Rejected reasons=["memory_bytes 1007087616 < 3000000000"]
FLEXLAB-AGENT: done result=failed
"""


def test_events_in_order() -> None:
    kinds = [e.kind for e in agent_events(CONSOLE)]
    assert kinds == ["init", "start", "disk", "facts", "dhcp", "clock", "registered", "done"]


def test_fields_words_and_payload() -> None:
    events = {e.kind: e for e in agent_events(CONSOLE)}
    assert events["disk"].fields["data"] == "intact"
    assert events["disk"].fields["boots"] == "4"
    assert events["clock"].words == ("ok",)
    assert events["dhcp"].words == ("ok",) and events["dhcp"].fields["ip"] == "10.99.0.48"
    assert events["registered"].fields["reasons"] == '["memory_bytes 1007087616 < 3000000000"]'
    payload = events["facts"].payload
    assert payload is not None and payload["cpu_cores"] == 2


def test_non_agent_line_is_ignored() -> None:
    assert parse_agent_line("[    1.2] virtio_net virtio0 eth0: renamed") is None


def test_wait_returns_when_line_arrives(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_text("booting\n")

    def later() -> None:
        time.sleep(0.3)
        with log.open("a") as fh:
            fh.write("FLEXLAB-AGENT: ready ok\n")

    writer = threading.Thread(target=later)
    writer.start()
    try:
        event = wait_for_event(log, "ready", timeout_s=10, poll_s=0.05)
    finally:
        writer.join()
    assert event.words == ("ok",)


def test_wait_timeout_carries_console_tail(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_text("FLEXLAB-AGENT: dhcp failed nic=eth0 reason=no-lease\n")
    with pytest.raises(ConsoleTimeout, match="no-lease"):
        wait_for_event(log, "registered", timeout_s=0.3, poll_s=0.05)
