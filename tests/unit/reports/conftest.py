"""A realistic sample run for the report tests: synthetic pcap, logs, findings.

Run this file as a script to regenerate fixtures/reports/sample-run/ from the
same builder (``python tests/unit/reports/conftest.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.capture.decode import decode_pcap
from harness.capture.synth_flows import BIOS, HTTPBOOT, UEFI, Flow, bios_flow, http_flow, uefi_flow
from harness.judge.result import ExpectationResult, MachineResult, RunResult, TimelineEvent
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture

T0 = 1_764_000_000.0
FAILING_RULE = "OFFER-3"


def _drop_vendor_class(spec: object) -> None:
    """The defect under test: the proxy's OFFER to the HTTP-boot client lacks option 60."""
    if getattr(spec, "chaddr", "") == HTTPBOOT.mac:
        spec.set_option(60, None)  # type: ignore[attr-defined]


def build_sample_run(root: Path, relative: bool = False) -> RunResult:
    """Write a pcap, logs and a console under ``root`` and return the run that cites them.

    With ``relative`` the run's paths are relative to ``root`` (as in a fixture).
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    flow = Flow(tweaks={"proxy_offer": _drop_vendor_class})
    flow.b.t = T0 + 1.0
    bios_flow(flow)
    uefi_flow(flow)
    http_flow(flow)
    pcap = root / "lan.pcap"
    flow.b.write(str(pcap))
    context = RuleContext(
        proxies=frozenset({"10.0.0.2"}), site_dhcp=frozenset({"10.0.0.1"})
    )
    findings = check_capture(decode_pcap(str(pcap)), context).findings
    logs = []
    for name, text in (
        ("bootproxy-bp1.log", '{"event": "offer", "mac": "52:54:00:00:00:33"}\n'),
        ("site-dhcp0.log", "dnsmasq-dhcp: DHCPOFFER(lan) 10.0.0.50 52:54:00:00:00:11\n"),
    ):
        (root / "logs" / name).write_text(text)
        logs.append(root / "logs" / name)
    console = root / "logs" / "console-bios.log"
    console.write_text("SeaBIOS (version 1.16)\niPXE 1.21 -- Open Source Network Boot\n")

    def p(path: Path) -> Path:
        return path.relative_to(root) if relative else path

    late = MachineResult(
        name="late", mac="52:54:00:00:00:99", firmware="uefi-x64", segment="lan",
        cluster="alpha", driver="sim", state="Booting",
        reasons=["no proxy offer seen"],
        timeline=[
            TimelineEvent(2.0, "state", "dhcp-discover"),
            TimelineEvent(2.01, "sent", "DISCOVER", detail={"dport": 67}),
            TimelineEvent(2.05, "received", "OFFER", peer="10.0.0.1",
                          detail={"src_ip": "10.0.0.1", "yiaddr": "10.0.0.60"}),
            TimelineEvent(6.0, "error", "PXE-E53", detail={"message": "no boot filename"}),
        ],
    )
    return RunResult(
        scenario_name="sample",
        scenario_file=Path("scenarios/sample.yaml"),
        scenario={
            "name": "sample",
            "description": "Three firmware types boot through bp1 <beside> the site DHCP "
            "server & one machine is never answered.",
            "tier": "sim",
            "timeout": 120.0,
            "segments": [{"name": "lan", "relay": None, "snooping": None, "ipv6_ra": True}],
            "proxies": [{"name": "bp1", "segments": ["lan"], "clusters": ["alpha"]}],
            "machines": [],
        },
        tier="sim",
        lab_id="flsample",
        started=T0,
        finished=T0 + 42.5,
        versions={"flexlab": "0.1.0", "python": "3.11.7", "dnsmasq": "Dnsmasq version 2.90"},
        machines=[
            MachineResult(
                name="bios", mac=BIOS.mac, firmware="bios-pxe", segment="lan",
                cluster="alpha", driver="sim", state="Ready", answered_by=["bp1"],
                ready_seconds=11.2, console=p(console),
            ),
            MachineResult(
                name="uefi", mac=UEFI.mac, firmware="uefi-x64", segment="lan",
                cluster="alpha", driver="sim", state="Ready", answered_by=["bp1"],
                ready_seconds=14.8,
            ),
            MachineResult(
                name="http", mac=HTTPBOOT.mac, firmware="uefi-http", segment="lan",
                cluster="alpha", driver="sim", state="Booting", answered_by=["bp1"],
            ),
            late,
        ],
        expectations=[
            ExpectationResult("run", "sample", "the run completes", "pass"),
            ExpectationResult("rule", "MUST", "every MUST rule holds", "fail",
                              f"{FAILING_RULE}: offer without option 60"),
            ExpectationResult("machine", "bios", "Control Plane state Ready", "pass", "Ready"),
            ExpectationResult("machine", "http", "Control Plane state Ready", "fail",
                              "state Booting"),
            ExpectationResult("cluster", "alpha", "Ready", "skip", "not judged"),
        ],
        findings={"lan": findings},
        pcaps={"lan": p(pcap)},
        logs=[p(x) for x in logs],
        phases=[("build lab", T0, T0 + 0.4), ("site", T0 + 0.4, T0 + 1.2),
                ("machines", T0 + 1.2, T0 + 40.0), ("judge", T0 + 40.0, T0 + 42.5)],
        error=None,
    )


@pytest.fixture
def sample_run(tmp_path: Path) -> RunResult:
    """A run with a failing MUST rule, two Ready machines and one never answered."""
    return build_sample_run(tmp_path / "run")


if __name__ == "__main__":  # regenerate the committed fixture
    from harness.reports.serialize import to_json

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "fixtures/reports/sample-run")
    run = build_sample_run(out, relative=True)
    (out / "run.json").write_text(to_json(run) + "\n")
    print(out / "run.json")
