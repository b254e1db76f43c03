"""The TFTP and HTTP boot counters' snapshots: every field, Counters as independent dicts."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from bootproxy.httpboot.counters import HttpCounters
from bootproxy.tftp.counters import TftpCounters

pytestmark = pytest.mark.unit


def test_tftp_snapshot_is_a_plain_copy() -> None:
    counters = TftpCounters(bytes_sent=1500, transfers_started=1)
    counters.errors["busy"] += 2
    snap = counters.snapshot()
    counters.errors["busy"] += 1
    counters.bytes_sent += 10
    assert list(snap) == [f.name for f in fields(TftpCounters)]
    assert snap["errors"] == {"busy": 2} and type(snap["errors"]) is dict
    assert snap["bytes_sent"] == 1500 and snap["transfers_started"] == 1
    json.dumps(snap)


def test_http_snapshot_is_a_plain_copy() -> None:
    counters = HttpCounters(requests=3, refused=1)
    counters.responses[200] += 2
    snap = counters.snapshot()
    counters.responses[404] += 1
    assert list(snap) == [f.name for f in fields(HttpCounters)]
    assert snap["responses"] == {200: 2} and type(snap["responses"]) is dict
    assert snap["requests"] == 3 and snap["refused"] == 1
