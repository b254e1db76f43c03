"""Loss and latency on the WAN link: loss by nftables random drop, latency only where the
kernel has netem (otherwise a clear refusal, never a silent no-op)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from harness.lab import capabilities as cap
from harness.lab.nsthread import NamespaceWorker
from harness.wan import WanRouter, WanRouterConfig
from harness.wan.probes import EchoStats, icmp_echo

from .conftest import WanSite

pytestmark = pytest.mark.sim


def _echo(site: WanSite, count: int) -> EchoStats:
    """Echoes from the router to the cloud across the WAN link (the router's own
    traffic: the site's firewall lets no ICMP out)."""
    with NamespaceWorker(site.lab.ns(site.router.config.router)) as router:
        return router.call(icmp_echo, site.cloud, count, 0.003, 1.0)


def test_loss_drops_a_measurable_share_and_is_removed(
        wan_site: Callable[[WanRouterConfig], WanSite]) -> None:
    site = wan_site(WanRouterConfig())
    assert _echo(site, 100).loss == 0.0
    site.router.set_impairment(loss_pct=30)
    lossy = _echo(site, 400)
    # 30 % each way: a round trip survives 0.7 * 0.7 = 49 % of the time (sd ~2.5 %)
    assert 0.38 < lossy.loss < 0.64, lossy
    site.router.set_impairment(loss_pct=0)
    assert _echo(site, 100).loss == 0.0


def test_latency_is_applied_with_netem_or_refused_with_how_to_get_it(
        wan_site: Callable[[WanRouterConfig], WanSite]) -> None:
    site = wan_site(WanRouterConfig())
    netem = cap.detect()[cap.NETEM].available
    if netem:
        site.router.set_impairment(latency_ms=40)
        stats = _echo(site, 20)
        assert stats.median_rtt_s is not None and stats.median_rtt_s >= 0.08, stats
        return
    began = time.monotonic()
    with pytest.raises(cap.CapabilityError, match="sch_netem"):
        site.router.set_impairment(loss_pct=50, latency_ms=40)
    assert time.monotonic() - began < 5
    assert _echo(site, 50).loss == 0.0, "a refused impairment must change nothing"
    # and a router asking for latency at start-up is refused before it builds anything
    again = WanRouter(site.lab, WanRouterConfig(latency_ms=40))
    with pytest.raises(cap.CapabilityError, match="netem"):
        again.start()
    assert "flexlab_wan" in site.lab.run("wan", ["nft", "list", "tables"])  # the first one's
