"""A small whole-site lab for the WAN router: ``site`` on ``lan``, the router between
``lan`` and ``wan``, and ``cloud`` on ``wan`` serving HTTP on 80, 443, 8888 and 22 (22
listens so that only the router's firewall can stop it)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from harness.components.web_listeners import WebListeners
from harness.lab import Host, HostLink, Lab, Segment, Topology
from harness.lab.nsthread import NamespaceWorker
from harness.wan import WanRouter, WanRouterConfig

CLOUD_PORTS = (80, 443, 8888, 22)


def wan_topology(config: WanRouterConfig) -> Topology:
    """The site segment with one site host, plus the router's and cloud's declared parts."""
    segment, hosts = config.topology_parts()
    return Topology(segments=(Segment(config.site_segment), segment),
                    hosts=(Host("site", (HostLink(config.site_segment),)), *hosts))


@dataclass
class WanSite:
    """A built WAN lab: the router started and ready, the cloud serving, a worker in
    ``site``'s namespace for probes."""

    lab: Lab
    router: WanRouter
    web: WebListeners
    site: NamespaceWorker

    @property
    def cloud(self) -> str:
        """Where the site reaches the cloud (its tunnel address when private)."""
        return self.router.control_plane_address

    @property
    def site_address(self) -> str:
        return self.lab.address("site", self.router.config.site_segment)

    @property
    def router_wan(self) -> str:
        cfg = self.router.config
        return self.lab.address(cfg.router, cfg.wan_segment)


@pytest.fixture
def wan_site(make_lab: Callable[[Topology], Lab]) -> Iterator[Callable[[WanRouterConfig],
                                                                      WanSite]]:
    """``wan_site(config)``: a WanSite; everything is stopped before the lab is torn down."""
    with contextlib.ExitStack() as stack:

        def build(config: WanRouterConfig) -> WanSite:
            lab = make_lab(wan_topology(config))
            router = WanRouter(lab, config)
            stack.enter_context(router)
            web = WebListeners(lab, config.cloud, CLOUD_PORTS)
            stack.enter_context(web)
            router.route_site_host("site")
            worker = stack.enter_context(NamespaceWorker(lab.ns("site")))
            return WanSite(lab, router, web, worker)

        yield build
