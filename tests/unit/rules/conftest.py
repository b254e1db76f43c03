"""Helpers for rule tests: build a synthetic exchange, write it, decode and judge it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.capture import decode_pcap
from harness.capture.synth_flows import Flow
from harness.rules import Report, RuleContext, check_capture

PROXY_IP = "10.0.0.2"
Judge = Callable[..., Report]


@pytest.fixture
def judge(tmp_path: Path) -> Judge:
    """``judge(*flow_fns, tweaks=..., context=...)`` -> Report for the written pcap."""
    counter = iter(range(1000))

    def run(
        *flows: Callable[[Flow], None],
        tweaks: dict | None = None,
        context: RuleContext | None = None,
    ) -> Report:
        f = Flow(tweaks=tweaks)
        for fn in flows:
            fn(f)
        path = f.b.write(str(tmp_path / f"case{next(counter)}.pcap"))
        ctx = context if context is not None else RuleContext(proxies=frozenset({PROXY_IP}))
        return check_capture(decode_pcap(path), ctx)

    return run
