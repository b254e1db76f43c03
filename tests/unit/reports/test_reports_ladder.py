"""Ladder SVGs: parsed back with ElementTree, checked for lanes, arrows and verdict marks."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.capture.decode import decode_pcap
from harness.capture.synth_flows import Flow, relayed_flow
from harness.judge.result import RunResult
from harness.reports.ladder import (
    MAX_ROWS,
    Ladder,
    Lane,
    Message,
    ladder_from_captures,
    ladder_from_timeline,
    machine_ladder,
    render_svg,
)
from harness.reports.serialize import from_json, to_json

pytestmark = pytest.mark.unit
NS = {"s": "http://www.w3.org/2000/svg"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def lane_titles(root: ET.Element) -> list[str]:
    return [
        "".join(t.itertext())
        for g in root.findall("s:g[@class='lane']", NS)
        for t in g.findall("s:text[@class='lane-title']", NS)
    ]


def labels(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{{{NS['s']}}}text")
            if t.get("class") == "label"]


def machine(run: RunResult, name: str):  # type: ignore[no-untyped-def]
    return next(m for m in run.machines if m.name == name)


def captures(run: RunResult) -> dict:  # type: ignore[type-arg]
    return {seg: decode_pcap(str(p)) for seg, p in run.pcaps.items()}


def test_bios_ladder_has_lanes_arrows_and_a_time_column(sample_run: RunResult) -> None:
    lad = machine_ladder(sample_run, machine(sample_run, "bios"), captures(sample_run))
    root = parse(render_svg(lad))
    assert lane_titles(root) == ["bios", "site DHCP", "Boot Proxy bp1"]
    arrows = root.findall(".//s:line[@class='arrow']", NS)
    assert len(arrows) == len(lad.messages) >= 8
    text = labels(root)
    assert text[0].startswith("DISCOVER")
    assert "OFFER 10.0.0.50" in text
    assert any(t.startswith("OFFER proxy undionly.kpxe") for t in text)
    assert any(t.startswith("RRQ undionly.kpxe") for t in text)
    assert any(t.startswith("DATA \u00d7") for t in text)  # TFTP blocks folded into one row
    times = [t.text for t in root.iter(f"{{{NS['s']}}}text") if t.get("class") == "time"]
    assert times[0] == "+0.000" and len(times) == len(lad.messages)
    assert not root.findall(".//s:g[@class='mark mark-fail']", NS)
    assert int(root.get("width", "0")) > 0 and int(root.get("height", "0")) > 0


def test_failing_rule_is_marked_beside_the_arrow_of_its_frame(sample_run: RunResult) -> None:
    lad = machine_ladder(sample_run, machine(sample_run, "http"), captures(sample_run))
    root = parse(render_svg(lad))
    fails = root.findall(".//s:g[@class='mark mark-fail']", NS)
    assert fails, "the OFFER without option 60 must carry a red mark"
    marked_rows = [g for g in root.findall("s:g[@class='msg']", NS)
                   if g.find("s:g[@class='mark mark-fail']", NS) is not None]
    row_labels = ["".join(t.itertext()) for g in marked_rows
                  for t in g.findall("s:text[@class='label']", NS)]
    assert any(lbl.startswith("OFFER proxy") for lbl in row_labels)
    assert all("\u2717 OFFER-3" in "".join(g.itertext()) for g in fails)
    bad = {f.frames for f in sample_run.findings["lan"] if f.rule_id == "OFFER-3"}
    frames = {int(x.lstrip("#")) for g in marked_rows for x in g.get("data-frames", "").split()}
    assert frames <= {fr for t in bad for fr in t}


def test_names_are_escaped_and_the_svg_stays_well_formed(sample_run: RunResult) -> None:
    m = dataclasses.replace(machine(sample_run, "bios"), name='a<b>&"c"')
    svg = render_svg(machine_ladder(sample_run, m, captures(sample_run)))
    root = parse(svg)
    assert lane_titles(root)[0] == 'a<b>&"c"'
    assert "<b>" not in svg


def test_relayed_exchange_gets_a_relay_lane(tmp_path: Path) -> None:
    flow = Flow()
    relayed_flow(flow)
    cap = decode_pcap(flow.b.write(str(tmp_path / "relayed.pcap")))
    lad = ladder_from_captures("r", "52:54:00:00:00:55", {"lan": cap})
    roles = [ln.role for ln in lad.lanes]
    assert roles[:2] == ["machine", "relay"] and "proxy" in roles
    relay = lad.lanes[1].key
    assert any(m.src == relay and m.label.startswith("DISCOVER relayed") for m in lad.messages)


def test_timeline_ladder_without_capture(sample_run: RunResult) -> None:
    late = machine(sample_run, "late")
    lad = machine_ladder(sample_run, late, captures(sample_run))  # no traffic in the pcap
    assert lad.title.endswith("machine timeline")
    root = parse(render_svg(lad))
    assert lane_titles(root) == ["late", "site DHCP"]
    assert "OFFER 10.0.0.60" in labels(root)
    assert lad == ladder_from_timeline(late)


def test_timeline_survives_a_run_json_round_trip(sample_run: RunResult) -> None:
    late = machine(from_json(to_json(sample_run)), "late")
    assert render_svg(ladder_from_timeline(late)) == render_svg(
        ladder_from_timeline(machine(sample_run, "late"))
    )


def test_huge_exchanges_are_cut_with_a_note() -> None:
    lanes = [Lane("m", "machine", "m"), Lane("s", "proxy", "s")]
    msgs = [Message(float(i), "m", "s", f"REQ {i}", "dhcp") for i in range(MAX_ROWS + 7)]
    lad = Ladder("big", lanes, msgs)
    from harness.reports.ladder import _cap

    root = parse(render_svg(_cap(lad)))
    assert len(root.findall(".//s:line[@class='arrow']", NS)) == MAX_ROWS
    assert "7 more messages" in "".join(root.itertext())
