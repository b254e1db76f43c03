"""Machines powered on before the Control Plane assigned them (scenarios/assigned-late.yaml),
timed from the evidence, never by sleeping: the capture's DISCOVERs and proxy offers, the
Control Plane's ``machine.created`` events and the Boot Proxy's ``assignments_updated``
log lines, all on this host's clock.

Silence while the machine is unknown; the proxy learns the assignment within its sync
interval (a long-poll the Control Plane answers as soon as assignments change); the
machine's first DISCOVER after that is answered at once, and it reaches Ready."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootproxy.config import BootProxyConfig
from harness.builder.runner import ScenarioRunner
from harness.capture.events import DhcpEvent
from harness.scenario.loader import load_scenario

pytestmark = [pytest.mark.sim, pytest.mark.timeout(180)]

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "assigned-late.yaml"
SYNC_INTERVAL = BootProxyConfig().longpoll_wait  # what the lab's proxies run with
ANSWER_WITHIN = 1.0                               # TIME-2


def test_silence_until_assigned_then_ready_within_the_sync_interval(tmp_path: Path) -> None:
    runner = ScenarioRunner(load_scenario(SCENARIO), reports_dir=tmp_path)
    plan = runner.plan
    result = runner.run()
    failed = [f"{e.subject}: {e.description} — {e.detail}" for e in result.expectations
              if e.verdict == "fail"]
    assert result.verdict == "pass", (result.error, failed)
    assert result.observed is not None
    events = result.observed.cp_state["events"]
    log = next(p for p in result.logs if p.name == "bootproxy-bp1.log")
    updates = sorted(float(e["ts"]) for e in map(json.loads, log.read_text().splitlines())
                     if e.get("event") == "assignments_updated")
    proxy_ip = result.observed.address_of("bp1", "lan")
    dhcp = runner.captures["lan"].dhcp
    late = [m for m in plan.machines if m.group in ("late", "latebios")]
    assert len(late) == 2
    for m in late:
        assigned = next(e["time"] for e in events
                        if e["kind"] == "machine.created" and e["subject"] == m.mac)
        learnt = next(t for t in updates if t >= assigned)
        assert learnt - assigned <= SYNC_INTERVAL, (m.key, learnt - assigned)
        discovers = [e for e in dhcp if e.op == 1 and e.msg_type == "DISCOVER"
                     and e.chaddr == m.mac]
        offers = [e for e in dhcp if is_proxy_offer(e, m.mac, proxy_ip)]
        before = [d for d in discovers if d.time < learnt]
        assert before, f"{m.key}: no DISCOVER before the proxy knew it (nothing to ignore)"
        assert not [o for o in offers if o.time < learnt], f"{m.key}: answered before assigned"
        after = next(d for d in discovers if d.time >= learnt)
        answer = next((o for o in offers if o.xid == after.xid and o.time >= after.time), None)
        assert answer is not None, f"{m.key}: first DISCOVER after the sync left unanswered"
        assert answer.time - after.time <= ANSWER_WITHIN, (m.key, answer.time - after.time)
        ready = next(r for r in result.machines if r.name == m.key)
        assert ready.state == "Ready", (m.key, ready.state, ready.reasons)


def is_proxy_offer(e: DhcpEvent, mac: str, proxy_ip: str) -> bool:
    """bp1's ProxyDHCP offer to ``mac`` (yiaddr 0, option 54 or source its address)."""
    return (e.op == 2 and e.msg_type == "OFFER" and e.chaddr == mac and e.yiaddr == "0.0.0.0"
            and (e.server_id or e.src_ip) == proxy_ip)
