"""Damaged capture files give CaptureError or a Capture, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.utils import wrpcapng

from harness.capture import CaptureError, decode_pcap
from harness.capture.synth_flows import Flow, uefi_flow
from harness.rules import check_capture

pytestmark = pytest.mark.unit

PCAP = (
    Path(__file__).resolve().parents[3] / "fixtures" / "pcaps" / "synthetic_uefi.pcap"
).read_bytes()


def _pcapng() -> bytes:
    f = Flow()
    uefi_flow(f)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "u.pcapng"
        wrpcapng(str(path), f.b.frames)
        return path.read_bytes()


PCAPNG = _pcapng()


@settings(max_examples=150, deadline=None)
@given(
    base=st.sampled_from([PCAP, PCAPNG]),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_damaged_files_fail_cleanly(
    base: bytes, edits: list[tuple[int, int]], cut: int | None
) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.pcap"
        path.write_bytes(bytes(data))
        try:
            cap = decode_pcap(str(path))
        except CaptureError as e:
            assert str(path) in str(e)
            return
        check_capture(cap)
