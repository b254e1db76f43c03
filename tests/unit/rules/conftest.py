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


def make_judge(tmp_path: Path) -> Judge:
    """``judge(*flow_fns, tweaks=..., context=...)`` -> Report for the written pcap.

    A plain function as well as the ``judge`` fixture, so test_every_rule_can_fail can
    run a rule's failing test itself and see the report it makes.
    """
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


@pytest.fixture
def judge(tmp_path: Path) -> Judge:
    """``judge(*flow_fns, tweaks=..., context=...)`` -> Report for the written pcap."""
    return make_judge(tmp_path)
