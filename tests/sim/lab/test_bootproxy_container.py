"""The Boot Proxy image under test in a container attached to the lab, driven by the CP."""

from __future__ import annotations

import pytest

from harness.components.container import DEFAULT_IMAGE, BootProxyContainer, _docker
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp

from .cp_seed import seed_one_machine
from .pxe_probe import pxe_discover
from .test_controlplane_component import TOPOLOGY

pytestmark = [pytest.mark.sim, pytest.mark.needs_docker]


def test_container_proxy_serves_assigned_macs_and_survives_restart(make_lab) -> None:
    if _docker("image", "inspect", DEFAULT_IMAGE).returncode != 0:
        pytest.fail(f"{DEFAULT_IMAGE} is not built: `make images` (make test builds it)")
    lab = make_lab(TOPOLOGY)
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            token = seed_one_machine(cp, lab)
            proxy = BootProxyContainer(lab, "bp1", ["lan"], cp_url=cp.url("lan"),
                                       cp_token=token)
            with SiteDhcp(lab, "dhcp", "lan"):
                with proxy:
                    caps = _docker("inspect", "-f", "{{.HostConfig.CapAdd}} "
                                   "{{.HostConfig.NetworkMode}}", proxy.container).stdout
                    known = pxe_discover(lab, "known", "lan")
                    stranger = pxe_discover(lab, "stranger", "lan")
                cp.stop()  # an outage: the restarted proxy must boot from its cache
                with proxy:
                    during_outage = pxe_discover(lab, "known", "lan")
                    logs = proxy.logs()
    finally:
        cp.close()
    assert "none" in caps and "NET_RAW" in caps and "NET_ADMIN" not in caps
    offers = [r for r in known if r["yiaddr"] == "0.0.0.0"]
    assert len(offers) == 1 and offers[0]["server_id"] == lab.address("bp1", "lan")
    assert not [r for r in stranger if r["yiaddr"] == "0.0.0.0"]
    assert [r for r in during_outage if r["yiaddr"] == "0.0.0.0"], logs[-2000:]
