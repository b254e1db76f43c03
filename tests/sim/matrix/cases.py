"""The firmware x topology x proxy-kind matrix: each case as a Scenario, and the known gaps.

Every firmware profile the sim tier emulates (``FIRMWARE_PROFILES`` that
``harness.builder.sim_driver.PROFILE_OF`` maps) boots on a segment of its own
(``direct``) or behind a DHCP relay (``relayed``), through each proxy kind the
runner starts (``process``, ``container``, ``dnsmasq``). A case either reaches
Ready, or is listed in :data:`GAPS` with the written reason it cannot and the
failure text that proves the machine stopped for that reason, not another.
Profiles the sim tier does not emulate are listed in :data:`VM_ONLY`.

Each case builds a fresh Scenario (frozen pydantic data) with one machine: no
lab, proxy or Control Plane is shared between cases.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from harness.builder.sim_driver import PROFILE_OF
from harness.scenario.model import FIRMWARE_PROFILES, Scenario

TOPOLOGIES = ("direct", "relayed")
KINDS = ("process", "container", "dnsmasq")
SIM_FIRMWARE = tuple(f for f in FIRMWARE_PROFILES if f in PROFILE_OF)
#: profiles the matrix leaves out, and why (the sim driver refuses them by name)
VM_ONLY = {f: "no sim emulator: runs real firmware in the vm tier only"
           for f in FIRMWARE_PROFILES if f not in PROFILE_OF}

#: firmware seconds x 0.1: an EDK2 offer window of 3.5 s takes 0.35 s
TIME_SCALE = 0.1
#: a case reaches Ready in ~1 s of machine time; the firmware of a documented gap reboots
#: and retries forever, the run stops watching after three failed boots that began once
#: its power-on was played (retry.settled: ~4 s; ~13 s for PXE-E53, which waits out every
#: DISCOVER)
TIMEOUT = 60.0


@dataclass(frozen=True)
class Gap:
    """Why a combination cannot reach Ready, and how a run shows it.

    ``stops_with`` must appear in the machine's failure (its reasons, which carry the
    emulator's last error): a run that fails anywhere else is a real failure, not this
    gap; a run that reaches Ready makes the strict xfail fail, so the table is updated.
    ``answered`` says whether the proxy still answers the machine (``booted_via``);
    ``fails_rules`` are the rules the gap itself breaks (e.g. SITE-3 when the proxy stays
    silent to a machine it serves): every other rule must hold as far as the boot went.
    ``time_scale`` shortens a case whose machine only waits out its own timers.
    """

    reason: str
    stops_with: str
    answered: bool = True
    fails_rules: frozenset[str] = frozenset()
    time_scale: float | None = None


_DNSMASQ_NO_HTTP = Gap(
    "dnsmasq serves ProxyDHCP and TFTP only, no HTTP: the iPXE it chainloads is sent to "
    "the script URL on port 8080 of the proxy host, where nothing listens, so no script, "
    "kernel or initrd (and no Ready)",
    ":8080/boot/")
_DNSMASQ_NO_HTTPCLIENT = Gap(
    "dnsmasq's ProxyDHCP answers only the PXE vendor classes (--dhcp-pxe-vendor); it never "
    "sends the HTTPClient vendor class and URL boot file UEFI HTTP boot needs, so the "
    "firmware gets no boot file",
    "PXE-E53", answered=False, fails_rules=frozenset({"SITE-3"}), time_scale=0.05)


def _gap(firmware: str, topology: str, kind: str) -> Gap | None:
    if kind != "dnsmasq":
        return None
    return _DNSMASQ_NO_HTTPCLIENT if firmware == "uefi-http" else _DNSMASQ_NO_HTTP


#: (firmware, topology, kind) -> the reason it cannot reach Ready
GAPS: dict[tuple[str, str, str], Gap] = {
    combo: gap for combo in itertools.product(SIM_FIRMWARE, TOPOLOGIES, KINDS)
    if (gap := _gap(*combo)) is not None
}

PROXY = "bp1"
MACHINE = "m"


def case_id(firmware: str, topology: str, kind: str) -> str:
    """The pytest id of one case, e.g. ``uefi-http-relayed-process``."""
    return f"{firmware}-{topology}-{kind}"


def matrix_scenario(firmware: str, topology: str, kind: str,
                    image: str | None = None) -> Scenario:
    """One case as a Scenario: site DHCP and the proxy on ``core``; one machine on ``core``
    (direct) or on ``lan`` behind a relay into ``core`` (relayed), expected Ready via the proxy.

    ``image`` is the Boot Proxy image for the container kind (None: the runner's default).
    """
    if topology not in TOPOLOGIES or kind not in KINDS or firmware not in SIM_FIRMWARE:
        raise ValueError(f"no matrix case {case_id(firmware, topology, kind)}")
    relayed = topology == "relayed"
    gap = GAPS.get((firmware, topology, kind))
    segments: list[dict[str, object]] = [{"name": "core"}]
    if relayed:
        segments.append({"name": "lan", "relay": {"upstream": "core"}})
    proxy: dict[str, object] = {"name": PROXY, "segments": ["core"], "clusters": ["alpha"],
                                "kind": kind}
    if kind == "container" and image is not None:
        proxy["image"] = image
    return Scenario.model_validate({
        "name": case_id(firmware, topology, kind),
        "description": f"{firmware} on a {topology} segment boots through a {kind} proxy",
        "time_scale": (gap and gap.time_scale) or TIME_SCALE,
        "timeout": TIMEOUT,
        "segments": segments,
        "site_dhcp": [{"segment": "core"}],
        "proxies": [proxy],
        "clusters": [{"name": "alpha"}],
        "machines": [{"name": MACHINE, "segment": "lan" if relayed else "core",
                      "cluster": "alpha", "firmware": firmware}],
        "steps": [{"at": 0, "action": "power_on", "machines": [MACHINE]}],
        "expect": {
            "rules": ["MUST", *(("RELAY-1", "RELAY-2", "RELAY-3") if relayed else ())],
            "machines": [{"name": MACHINE, "booted_via": PROXY, "state": "Ready"}],
            "clusters": [{"name": "alpha"}],
        },
    })
