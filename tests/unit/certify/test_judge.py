"""Machine requirements judged from registered facts: each failure names the measured value
and the need; memory and disk say GB and GiB; the ROM's option set and phase times come off a
recorded real-firmware capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.capture.decode import decode_pcap
from harness.certify.firmware import firmware_options
from harness.certify.judge import judge_machine
from harness.certify.timings import phase_times
from harness.rules.model import Finding, Level, Verdict

pytestmark = pytest.mark.unit

MAC = "52:54:00:aa:00:01"
NOW = 1_800_000_000.0
GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "pcaps"


def facts(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "arch": "x86_64", "cpu_cores": 2, "memory_bytes": 3 * 10**9,
        "disks": [{"name": "vda", "size_bytes": 10 * 10**9}],
        "nics": [{"name": "eth0", "mac": MAC.upper()}], "firmware": "bios",
        "vendor": "QEMU", "clock_unix": NOW + 0.4}
    base.update(over)
    return base


def judge(f: dict[str, Any], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"discover_seen": True, "dhcp_firmware": "bios",
                            "registered_at": NOW}
    args.update(kw)
    return {r.name: r for r in judge_machine(f, MAC, **args)}


def test_a_machine_exactly_at_the_thresholds_passes_everything() -> None:
    results = judge(facts())
    assert [n for n, r in results.items() if not r.ok] == []
    assert set(results) == {"arch", "cpu", "memory", "disk", "pxe_nic", "firmware", "clock",
                            "firmware_rules"}


@pytest.mark.parametrize(("over", "name", "reason"), [
    ({"cpu_cores": 1}, "cpu", "cpu: 1 core, needs >= 2"),
    ({"arch": "aarch64"}, "arch", "arch: aarch64, needs x86-64"),
    # 3 GiB-ish machines that are below 3 GB do not exist; 2.9e9 bytes is 2.70 GiB
    ({"memory_bytes": 2_900_000_000}, "memory", "memory: 2.90 GB (2.70 GiB), needs >= 3 GB"),
    ({"disks": [{"name": "sda", "size_bytes": 8 * 10**9}]}, "disk",
     "disk: largest is sda 8.00 GB (7.45 GiB), needs >= 10 GB on one disk"),
    ({"disks": []}, "disk", "disk: none reported"),
    ({"nics": [{"name": "eth1", "mac": "52:54:00:aa:00:02"}]}, "pxe_nic",
     "do not include 52:54:00:aa:00:01"),
    ({"clock_unix": NOW - 3.0}, "clock", "clock: clock skew -3.000 s exceeds 1 s"),
    ({"firmware": "efi"}, "firmware", "the ROM said bios (option 93) but the booted node "
     "reports efi"),
])
def test_each_failure_names_what_was_measured_and_what_is_needed(
        over: dict[str, Any], name: str, reason: str) -> None:
    results = judge(facts(**over))
    failed = [n for n, r in results.items() if not r.ok]
    assert failed == [name]
    assert reason in results[name].reason, results[name].reason


def test_memory_counts_decimal_gigabytes_as_the_control_plane_does() -> None:
    # 3 GiB = 3.22 GB passes; 2.8 GiB = 3.006 GB passes too; 2.79 GiB = 2.996 GB fails
    assert judge(facts(memory_bytes=3 * 1024**3))["memory"].ok
    assert judge(facts(memory_bytes=int(2.8 * 1024**3)))["memory"].ok
    low = judge(facts(memory_bytes=int(2.79 * 1024**3)))["memory"]
    assert not low.ok and "GiB" in low.measured and "GB" in low.measured


def test_no_discover_from_the_mac_fails_pxe_from_the_chosen_nic() -> None:
    r = judge(facts(), discover_seen=False)["pxe_nic"]
    assert not r.ok and "no DHCPDISCOVER from 52:54:00:aa:00:01" in r.reason


def test_firmware_from_option_93_and_the_node() -> None:
    assert judge(facts(firmware="efi"), dhcp_firmware="efi-x64")["firmware"].ok
    arm = judge(facts(firmware="efi"), dhcp_firmware="efi-arm64")["firmware"]
    assert arm.ok is False
    missing = judge(facts(), dhcp_firmware=None)["firmware"]
    assert missing.ok and "no option 93" in missing.warning
    assert not judge(facts(firmware="coreboot"))["firmware"].ok


def test_clock_within_one_second_either_way_and_unknown_fails() -> None:
    assert judge(facts(clock_unix=NOW - 0.99))["clock"].ok
    assert not judge(facts(clock_unix=NOW + 1.2))["clock"].ok
    assert not judge(facts(), registered_at=None)["clock"].ok


def test_clock_judged_by_the_offset_the_node_measured_as_the_control_plane_does() -> None:
    """A VM under TCG stamps clock_unix well before the registration arrives: one way it
    looks 1.5 s slow although its two-way offset is 0.05 s. The Control Plane accepts
    it, so certify must too; a clock really off still fails, by either measurement."""
    slow_send = {"clock_unix": NOW - 1.5, "clock_source": "http",
                 "clock_server": "http://cp/api/v1/time"}
    good = judge(facts(**slow_send, clock_offset_s=0.05, clock_error_s=0.2))["clock"]
    assert good.ok and "+0.050 s +/- 0.200 s" in good.measured
    off = judge(facts(**slow_send, clock_offset_s=-3.0, clock_error_s=0.2))["clock"]
    assert not off.ok and "clock offset -3.000 s +/- 0.200 s" in off.reason
    ntp_off = judge(facts(clock_unix=NOW, clock_source="ntp", clock_server="10.0.0.1",
                          clock_offset_s=2.5, clock_error_s=None))["clock"]
    assert not ntp_off.ok and "from NTP server 10.0.0.1" in ntp_off.reason
    # an offset the node could not bound (no error) is not trusted: one-way it is judged
    unbounded = judge(facts(**slow_send, clock_offset_s=0.0))["clock"]
    assert not unbounded.ok and "clock skew -1.500 s" in unbounded.reason


def test_an_unreadable_clock_fails_with_a_reason_not_a_crash() -> None:
    r = judge(facts(clock_unix="soon"))["clock"]
    assert not r.ok and "unreadable clock_unix 'soon'" in r.reason


def test_client_rule_must_failures_fail_the_machine_should_failures_warn() -> None:
    must = Finding("CLI-2", Level.MUST, Verdict.FAIL, "option 94 is 2 bytes", client=MAC)
    should = Finding("CLI-1", Level.SHOULD, Verdict.FAIL, "option 97 missing", client=MAC)
    proxy = Finding("OFFER-2", Level.MUST, Verdict.FAIL, "yiaddr set", server="10.0.0.2")
    r = judge(facts(), findings=[should, proxy])["firmware_rules"]
    assert r.ok and "CLI-1" in r.warning and "OFFER-2" not in r.warning + r.reason
    r = judge(facts(), findings=[must])["firmware_rules"]
    assert not r.ok and "CLI-2" in r.reason


def test_firmware_option_set_and_phases_from_a_real_ovmf_capture() -> None:
    cap = decode_pcap(str(GOLDEN / "golden_ovmf-pxe_bootproxy.pcap"))
    mac = "52:54:00:6f:00:02"
    doc = firmware_options(cap, mac)
    assert doc["firmware"] == "efi-x64"
    rom = doc["rom"]
    assert rom["vendor_class_60"] == "PXEClient:Arch:00007:UNDI:003000"
    assert rom["client_arch_93"] == [7] and rom["nii_94"] == "010300"
    assert rom["options_order"][0] == 53 and 55 in rom["options_order"]
    assert rom["param_request_list_55"][:3] == [1, 2, 3]
    assert firmware_options(cap, "52:54:00:00:00:99")["rom"] is None
    t = phase_times(cap, mac, proxy_ip="10.89.162.2", http_port=8080, cp_port=8000)
    phases = t["phases"]
    assert phases["dhcp"]["seconds"] > 0 and phases["tftp"]["start"] >= phases["dhcp"]["end"]
    assert phases["proxydhcp"]["start"] == 0.0
    assert phases["total"] is None  # the golden capture stops before any registration
