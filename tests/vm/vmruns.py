"""Helpers for vm-tier scenario runs: the one site they boot on, and the driver a run built.

The vm run tests (reboot, teardown, HTTP boot, two NICs) each boot VMs on the same
site: site DHCP on every segment, one Boot Proxy container ``bp1`` on ``lan`` serving
cluster ``alpha``, the machines on ``lan`` powered on at once and expected Ready through
bp1. :func:`bp1_site_scenario` writes that site once, so a test states only what is its
own (machines, timeout, rules, an extra segment). The runner builds and stops its
machine driver inside ``run()``; :class:`DriverRecorder` keeps it, so a test can read the
VMs' boots, specs and files afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import yaml

from harness.builder.kinds import Kinds
from harness.lab import Lab
from harness.scenario.drivers import MachineDriver
from harness.scenario.loader import parse_scenario
from harness.scenario.model import Scenario

D = TypeVar("D", bound=MachineDriver)

DISK_GB = 12   # each VM's sparse data disk (costs nothing until written)


def lan_vm(name: str, firmware: str, nic: str, *, cores: int = 2,
           memory_gb: int = 4) -> dict[str, object]:
    """One VM of cluster ``alpha`` on segment ``lan`` (the fields a scenario's machine has)."""
    return {"name": name, "segment": "lan", "cluster": "alpha", "firmware": firmware,
            "nic": nic, "facts": {"cores": cores, "memory_gb": memory_gb, "disk_gb": DISK_GB}}


def bp1_site_scenario(name: str, machines: Sequence[dict[str, object]], *, timeout: int,
                      rules: Sequence[str] = (), segments_before_lan: Sequence[str] = (),
                      description: str | None = None) -> Scenario:
    """A vm-tier scenario on the vm run tests' site: ``segments_before_lan`` and
    ``lan``, each with site DHCP; container Boot Proxy bp1 on lan for cluster alpha; every
    machine powered on at 0 and expected Ready via bp1, alpha ready, and ``rules`` PASS."""
    names = [str(m["name"]) for m in machines]
    segments = [*segments_before_lan, "lan"]
    expect: dict[str, object] = {
        "machines": [{"name": n, "booted_via": "bp1", "state": "Ready"} for n in names],
        "clusters": [{"name": "alpha", "ready": True}],
    }
    if rules:
        expect = {"rules": list(rules), **expect}
    doc: dict[str, object] = {
        "name": name,
        **({"description": description} if description else {}),
        "tier": "vm",
        "timeout": timeout,
        "segments": [{"name": s} for s in segments],
        "site_dhcp": [{"segment": s} for s in segments],
        "proxies": [{"name": "bp1", "segments": ["lan"], "clusters": ["alpha"],
                     "kind": "container"}],
        "clusters": [{"name": "alpha"}],
        "machines": list(machines),
        "steps": [{"at": 0, "action": "power_on", "machines": names}],
        "expect": expect,
    }
    return parse_scenario(yaml.safe_dump(doc, sort_keys=False), f"<{name}>")


class DriverRecorder(Generic[D]):
    """A ``Kinds(driver=...)`` factory that keeps every driver it makes, in order."""

    def __init__(self, make: Callable[[Lab, Scenario], D]) -> None:
        self.make = make
        self.drivers: list[D] = []

    def __call__(self, lab: Lab, scenario: Scenario) -> D:
        """Make the run's driver with ``make`` and keep it."""
        driver = self.make(lab, scenario)
        self.drivers.append(driver)
        return driver

    def kinds(self) -> Kinds:
        """The runner's kinds: the real ones, with this recorder making the driver."""
        return Kinds(driver=self)
