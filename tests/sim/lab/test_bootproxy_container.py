"""The Boot Proxy image under test in a container attached to the lab, driven by the CP."""

from __future__ import annotations

import time

import pytest

from harness.components.container import (
    DEFAULT_IMAGE,
    BootProxyContainer,
    docker_client,
    image_present,
)
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.errors import ComponentError

from .cp_seed import seed_one_machine
from .pxe_probe import pxe_discover
from .test_controlplane_component import TOPOLOGY

pytestmark = [pytest.mark.sim, pytest.mark.needs_docker]


def _require_image() -> None:
    if not image_present(DEFAULT_IMAGE):
        pytest.fail(f"{DEFAULT_IMAGE} is not built: `make images` (make test builds it)")


def test_container_proxy_serves_assigned_macs_and_survives_restart(make_lab) -> None:
    _require_image()
    lab = make_lab(TOPOLOGY)
    cp = ControlPlane(lab, "cp")
    try:
        with cp:
            token = seed_one_machine(cp, lab)
            proxy = BootProxyContainer(lab, "bp1", ["lan"], cp_url=cp.url("lan"),
                                       cp_token=token)
            with SiteDhcp(lab, "dhcp", "lan"):
                with proxy:
                    host_config = docker_client().containers.get(proxy.container)\
                        .attrs["HostConfig"]
                    caps = f"{host_config['CapAdd']} {host_config['NetworkMode']}"
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


def test_container_dying_during_readiness_fails_at_once_with_its_last_lines(make_lab) -> None:
    """Docker's die event ends the wait: no waiting out the timeout, and the error carries
    the proxy's own last words (here argparse rejecting a flag)."""
    _require_image()
    lab = make_lab(TOPOLOGY)
    proxy = BootProxyContainer(lab, "bp1", ["lan"], extra_args=["--no-such-flag"])
    proxy.start()
    try:
        began = time.monotonic()
        with pytest.raises(ComponentError) as failed:
            proxy.wait_ready(timeout=300)
        waited = time.monotonic() - began
    finally:
        proxy.stop()
    assert waited < 60, f"waited {waited:.0f} s: the death was not noticed"
    assert "exited with status 2" in str(failed.value)
    assert "unrecognized arguments: --no-such-flag" in str(failed.value)
    assert not docker_client().containers.list(all=True, filters={"name": proxy.container})


def test_a_start_failing_after_the_container_exists_removes_it(
        make_lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """``with proxy:`` stops only what started: a start that fails once the container is
    created (here moving the lab interfaces in) must remove the container itself."""
    _require_image()
    lab = make_lab(TOPOLOGY)
    proxy = BootProxyContainer(lab, "bp1", ["lan"])

    def refuse() -> None:
        assert docker_client().containers.get(proxy.container)  # it exists by now
        raise ComponentError("interfaces could not be moved")

    monkeypatch.setattr(proxy, "_move_interfaces", refuse)
    with pytest.raises(ComponentError, match="could not be moved"), proxy:
        pass
    assert not docker_client().containers.list(all=True, filters={"name": proxy.container})
