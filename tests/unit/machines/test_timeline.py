"""A machine's timeline is plain data: ordered, filterable, and JSON round-trips."""

from __future__ import annotations

import json

import pytest

from harness.machines.sim.timeline import Timeline

pytestmark = pytest.mark.unit


def test_timeline_is_json_serialisable_and_keeps_order() -> None:
    tl = Timeline("52:54:00:00:00:01", "edk2-x64")
    tl.add(0.0, "state", "power-on")
    tl.add(0.0012345678, "sent", "DISCOVER", dport=67, kind="not a clash")
    tl.add(0.5, "state", "bound", address="10.0.0.5")
    data = json.loads(tl.dumps())
    assert data["mac"] == "52:54:00:00:00:01" and data["profile"] == "edk2-x64"
    assert [e["summary"] for e in data["events"]] == ["power-on", "DISCOVER", "bound"]
    assert data["events"][1]["detail"] == {"dport": 67, "kind": "not a clash"}
    assert data["events"][1]["t"] == pytest.approx(0.001235)
    assert tl.states() == ["power-on", "bound"]
    assert [e.summary for e in tl.of_kind("sent")] == ["DISCOVER"]


def test_to_json_is_what_dataclasses_asdict_gave_and_shares_no_detail_dict() -> None:
    import dataclasses

    tl = Timeline("52:54:00:00:00:01", "edk2-x64")
    tl.add(0.5, "sent", "DISCOVER", xid="0a0b0c0d", options=[60, 93], peer=None)
    tl.add(1.25, "state", "bound", address="10.0.0.5", lease={"t1": 300})
    got = tl.to_json()
    assert got == {"mac": tl.mac, "profile": tl.profile,
                   "events": [dataclasses.asdict(e) for e in tl.events]}
    got["events"][0]["detail"]["xid"] = "changed"  # a report editing its copy
    assert tl.events[0].detail["xid"] == "0a0b0c0d"
