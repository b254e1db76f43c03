"""The lab services behind the site-check tests keep the Component contract: a real
readiness probe, a failed start that explains itself, and nothing left running."""

from __future__ import annotations

import pytest

from harness.components.dns_server import BindDns
from harness.components.fake_ntp import FakeNtp
from harness.components.web_listeners import WebListeners
from harness.errors import ComponentError
from harness.lab import Host, HostLink, Segment, Topology

pytestmark = [pytest.mark.sim, pytest.mark.timeout(60)]

TOPOLOGY = Topology(segments=(Segment("lan", ipv6_ra=False),),
                    hosts=(Host("inet", (HostLink("lan"),)),))


def test_services_start_ready_and_stop_by_pid(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    inet = lab.address("inet", "lan")
    comps = [BindDns(lab, "inet", "lan", {"pypi.org": inet}), FakeNtp(lab, "inet", 1.5),
             WebListeners(lab, "inet", [80, 8888])]
    try:
        for comp in comps:
            comp.start()
            comp.wait_ready()
        assert all(c.process is not None and c.process.running() for c in comps)
    finally:
        for comp in reversed(comps):
            comp.stop()
    assert not any(c.process is not None and c.process.running() for c in comps)


def test_failed_starts_explain_themselves(make_lab) -> None:
    lab = make_lab(TOPOLOGY)
    broken = BindDns(lab, "inet", "lan", {"pypi.org": "999.1.1.1"}, name="named-broken")
    ntp1, ntp2 = FakeNtp(lab, "inet"), FakeNtp(lab, "inet", name="ntp-clash")
    try:
        broken.start()
        with pytest.raises(ComponentError) as dns_err:
            broken.wait_ready(timeout=10)
        with ntp1:
            ntp2.start()
            with pytest.raises(ComponentError) as ntp_err:
                ntp2.wait_ready(timeout=10)
    finally:
        broken.stop()
        ntp2.stop()
    assert "zone(s) . not loaded" in str(dns_err.value)
    assert "999.1.1.1" in str(dns_err.value) or "bad dotted quad" in str(dns_err.value)
    assert "ntp-clash exited" in str(ntp_err.value)
    assert "Address already in use" in str(ntp_err.value)
