"""vm tier: OVMF's own UEFI HTTP boot, end to end, with no TFTP at all.

OVMF's PXE boot options are switched off through fw_cfg (``uefi-http`` in the vm
driver), so its only network boot options are HTTP boot: its DISCOVER says
``HTTPClient:Arch:00016``, the Boot Proxy container answers ``HTTPClient`` with an
absolute ``http://`` URL (IPXE-4), OVMF downloads iPXE EFI over HTTP, iPXE gets its
script, kernel and initrd over HTTP, and the node agent reaches Ready. A scenario file
cannot say "no TFTP packet was sent", so this test runs the scenario and reads every
segment's capture itself: not one UDP datagram to or from port 69, and no TFTP
transfer the decoder found (TFTP data moves between ephemeral ports).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import UDP
from scapy.utils import PcapReader
from vmhelpers import failed_expectations, needs_libvirt_python, needs_qemu
from vmruns import bp1_site_scenario, lan_vm

from harness.builder.runner import ScenarioRunner

pytestmark = [pytest.mark.vm, needs_qemu, needs_libvirt_python]

SCENARIO = bp1_site_scenario(
    "vm-http-boot", [lan_vm("http", "uefi-http", "virtio")], timeout=300,
    rules=["MUST", "IPXE-4"],
    description='Guide: "EFI boot mode is preferred (though legacy will work too)". OVMF '
    "boots by UEFI HTTP boot alone (its PXE switched off): HTTPClient offer with an absolute "
    "URL, iPXE EFI, script, kernel and initrd all over HTTP, Ready.\n")


def tftp_datagrams(pcap: Path) -> list[str]:
    """Every UDP datagram from or to port 69 in ``pcap``, as text."""
    found = []
    with PcapReader(str(pcap)) as reader:
        for number, frame in enumerate(reader, 1):
            udp = frame.getlayer(UDP)
            if udp is not None and 69 in (udp.sport, udp.dport):
                found.append(f"frame {number}: {frame.summary()}")
    return found


def test_ovmf_http_boot_reaches_ready_without_tftp(tmp_path: Path) -> None:
    runner = ScenarioRunner(SCENARIO, reports_dir=tmp_path)
    result = runner.run()
    assert result.verdict == "pass", failed_expectations(result)
    dhcp = [e for cap in runner.captures.values() for e in cap.dhcp]
    discovers = [e for e in dhcp if e.msg_type == "DISCOVER"
                 and (e.vendor_class or "").startswith("HTTPClient")]
    assert discovers, "OVMF never sent an HTTPClient DISCOVER: it did not HTTP boot"
    assert {e.client_arch for e in discovers} == {(16,)}, [e.client_arch for e in discovers]
    assert not [e for e in dhcp if e.msg_type == "DISCOVER" and e.client_arch in ((7,), (9,))
                and not e.is_ipxe], "OVMF's PXE stack ran: its PXE boot options are on"
    offers = [e for e in dhcp if e.is_reply and (e.vendor_class or "") == "HTTPClient"]
    assert offers and all(e.file.startswith("http://") for e in offers), \
        [(e.frame, e.file) for e in offers]
    assert result.pcaps, "no capture to read"
    for segment, pcap in result.pcaps.items():
        assert tftp_datagrams(Path(pcap)) == [], f"TFTP on {segment}"
    assert [e for cap in runner.captures.values() for e in cap.tftp] == []
    http_paths = [e.path for cap in runner.captures.values() for e in cap.http if e.path]
    assert any(p.endswith(".efi") for p in http_paths), http_paths
    assert any(p.endswith(".ipxe") for p in http_paths), http_paths


def test_tftp_check_sees_a_pxe_boot() -> None:
    """The check above can fail: a PXE boot's capture has TFTP, an HTTP boot's has none."""
    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "pcaps"
    assert tftp_datagrams(fixtures / "golden_ovmf-pxe_bootproxy.pcap")
    assert tftp_datagrams(fixtures / "synthetic_http.pcap") == []
