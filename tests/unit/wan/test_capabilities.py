"""Host capability detection: each piece tried, each missing one named with its fix, and a
request the host cannot meet refused before anything is built."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import DependencyError, FlexlabError
from harness.lab import capabilities as cap
from harness.wan.config import WanRouterConfig
from harness.wan.router import WanRouter, requirements

pytestmark = pytest.mark.unit
THIS_HOST = {  # what the probes print on a kernel without wireguard and netem
    "wireguard": (False, "Error: Unknown device type."),
    "netem": (False, "Error: Specified qdisc kind is unknown."),
}


def fake_run(failing: dict[str, tuple[bool, str]]):  # returns a runner with .calls
    """A probe runner: argv containing a key of ``failing`` gets that answer, else ok."""
    calls: list[list[str]] = []

    def run(argv: Sequence[str]) -> tuple[bool, str]:
        calls.append(list(argv))
        for word, answer in failing.items():
            if word in argv:
                return answer
        return True, ""

    run.calls = calls  # type: ignore[attr-defined]
    return run


def which_all(name: str) -> str | None:
    return f"/usr/bin/{name}"


def test_everything_present_means_kernel_wireguard_and_netem() -> None:
    caps = cap.detect(run=fake_run({}), which=which_all)
    assert all(c.available for c in caps.values()), cap.report(caps)
    assert cap.wireguard_backend(caps) == "kernel"


def test_this_hosts_kernel_falls_back_to_wireguard_go_and_refuses_latency() -> None:
    caps = cap.detect(run=fake_run(THIS_HOST), which=which_all)
    assert cap.wireguard_backend(caps) == "userspace"
    assert not caps[cap.NETEM].available
    assert "Specified qdisc kind is unknown" in caps[cap.NETEM].detail
    with pytest.raises(cap.CapabilityError, match="sch_netem"):
        cap.require(cap.NETEM, caps)


def test_probes_are_real_actions_in_a_scratch_namespace() -> None:
    run = fake_run({})
    cap.detect(run=run, which=which_all)
    tried = [" ".join(argv) for argv in run.calls]
    assert "ip link add flprobe0 type wireguard" in tried
    assert "ip tuntap add dev flprobe0 mode tun" in tried
    assert "tc qdisc add dev lo root netem delay 1ms" in tried
    assert "nft add table inet flexlab_probe" in tried


def test_no_tun_means_no_userspace_wireguard_and_the_error_says_how() -> None:
    caps = cap.detect(run=fake_run({**THIS_HOST, "tuntap": (False, "open: No such device")}),
                      which=which_all)
    assert not caps[cap.TUN].available and not caps[cap.WIREGUARD_GO].available
    with pytest.raises(cap.CapabilityError) as err:
        cap.wireguard_backend(caps)
    assert "/dev/net/tun" in str(err.value) and "modprobe wireguard" in str(err.value)


def test_missing_binaries_name_their_debian_packages() -> None:
    def which(name: str) -> str | None:
        return None if name in ("wg", "wireguard-go", "nft") else f"/usr/bin/{name}"

    caps = cap.detect(run=fake_run(THIS_HOST), which=which)
    with pytest.raises(cap.CapabilityError, match="apt-get install wireguard-tools"):
        cap.wireguard_backend(caps)
    with pytest.raises(cap.CapabilityError, match="apt-get install nftables"):
        cap.require(cap.NFT, caps)
    assert "apt-get install wireguard-go" in caps[cap.WIREGUARD_GO].how_to


def test_capability_error_is_a_flexlab_dependency_error() -> None:
    assert issubclass(cap.CapabilityError, DependencyError)
    assert issubclass(cap.CapabilityError, FlexlabError)


def test_report_has_one_line_per_capability_with_the_fix_for_missing_ones() -> None:
    text = cap.report(cap.detect(run=fake_run(THIS_HOST), which=which_all))
    lines = text.splitlines()
    assert [line.split()[0] for line in lines] == list(cap.ALL)
    netem = next(line for line in lines if line.startswith("netem"))
    assert " missing " in netem and "how: " in netem
    assert "how: " not in next(line for line in lines if line.startswith("nft"))


def test_without_root_nothing_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cap.os, "geteuid", lambda: 1000)
    ok, detail = cap.run_in_scratch_netns(["true"])
    assert not ok and "not root" in detail


def test_router_requirements_follow_the_config() -> None:
    host = cap.detect(run=fake_run(THIS_HOST), which=which_all)
    assert requirements(WanRouterConfig(), host) is None
    assert requirements(WanRouterConfig(private=True, loss_pct=5), host) == "userspace"
    with pytest.raises(cap.CapabilityError, match="netem"):
        requirements(WanRouterConfig(latency_ms=40), host)


def test_router_start_refuses_latency_before_touching_the_lab(tmp_path: Path) -> None:
    touched: list[str] = []
    lab = SimpleNamespace(id="flab123", reports_dir=tmp_path,
                          run=lambda *a, **k: touched.append("run"),
                          link=lambda *a: touched.append("link"))
    router = WanRouter(lab, WanRouterConfig(latency_ms=40),  # type: ignore[arg-type]
                       capabilities=cap.detect(run=fake_run(THIS_HOST), which=which_all))
    with pytest.raises(cap.CapabilityError, match="modprobe sch_netem"):
        router.start()
    assert touched == []
