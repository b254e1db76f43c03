"""vm tier driver, the parts that need no VM: console phases, the agent's outcome, sizes,
and the domain name `flexlab clean` relies on. (Marked vm to stay with the tier's files;
they need neither root nor libvirt.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.builder.vm_driver import (
    FIRMWARE_OF,
    LabDomainSpec,
    disk_bytes,
    memory_mib,
    outcome_of,
    phase_of,
)
from harness.machines.vm.console import agent_events
from harness.machines.vm.domain import Firmware, Nic

pytestmark = pytest.mark.vm

SEABIOS = "SeaBIOS (version 1.16.2-debian-1.16.2-1)\nBooting from ROM...\n"
IPXE = "iPXE (http://ipxe.org) 00:03.0 C900 PCI2.10 PnP PMM+\nNext server: 10.1.0.3\n"
HTTP = "http://10.1.0.3:8080/boot/52-54-00-00-00-01.ipxe... ok\n"
KERNEL = "[    0.000000] Linux version 6.1.0-56-amd64\n"
READY = ("FLEXLAB-AGENT: init kernel=6.1.0-56-amd64\r\n"
         "FLEXLAB-AGENT: registered state=Registered\r\n"
         "FLEXLAB-AGENT: ready ok\r\nFLEXLAB-AGENT: done result=ok\r\n")
REJECTED = ('FLEXLAB-AGENT: registered state=Rejected reasons=["cpu_cores 1 < 2"]\n'
            "FLEXLAB-AGENT: done result=failed\n")


def test_phase_follows_the_boot_chain() -> None:
    assert phase_of("") == "power-on"
    assert phase_of(SEABIOS) == "firmware"
    assert phase_of(SEABIOS + IPXE) == "ipxe"
    assert phase_of(SEABIOS + IPXE + HTTP) == "http"
    assert phase_of(SEABIOS + IPXE + HTTP + KERNEL + READY) == "agent"
    assert phase_of("BdsDxe: loading Boot0001\n>>Start PXE over IPv4.\n") == "dhcp"


def test_outcome_is_ready_rejected_failed_or_pending() -> None:
    assert outcome_of(agent_events(READY)) == "ready"
    assert outcome_of(agent_events(REJECTED)) == "rejected"
    assert outcome_of(agent_events("FLEXLAB-AGENT: done result=failed\n")) == "failed"
    assert outcome_of(agent_events("FLEXLAB-AGENT: init kernel=x\n")) is None


def test_sizes_meet_the_control_plane_units() -> None:
    assert memory_mib(4) * 2**20 > 3 * 10**9        # 4 GB passes the 3·10⁹ MemTotal check
    assert memory_mib(2) * 2**20 < 3 * 10**9
    assert disk_bytes(12) >= 10 * 10**9 > disk_bytes(8)


def test_firmware_map_and_domain_name() -> None:
    assert FIRMWARE_OF["seabios-ipxe"] == (Firmware.BIOS, True)
    assert FIRMWARE_OF["uefi-x64"] == (Firmware.UEFI, False)
    assert FIRMWARE_OF["ovmf-ipxe"] == (Firmware.UEFI, True)
    spec = LabDomainSpec(lab_id="flabcde", machine="bios",
                         nics=(Nic("flabcdev0", "52:54:00:00:00:01"),),
                         serial_log=Path("/tmp/x.log"))
    assert spec.name == "flabcde-bios"             # the prefix flexlab clean destroys by
    xml = spec.to_xml()
    assert "<name>flabcde-bios</name>" in xml
    assert '<bios useserial="yes" rebootTimeout="5000"' in xml   # SeaBIOS retries its boot


def test_http_boot_profile_switches_ovmf_pxe_off() -> None:
    from harness.builder.vm_driver import FW_CFG_OF
    assert FIRMWARE_OF["uefi-http"] == (Firmware.UEFI, False)    # OVMF's own network stack
    assert phase_of("BdsDxe: loading Boot0002\n>>Start HTTP Boot over IPv4.\n") == "dhcp"
    spec = LabDomainSpec(lab_id="flabcde", machine="http", firmware=Firmware.UEFI,
                         nics=(Nic("flabcdev0", "52:54:00:00:00:01", rom=False),),
                         serial_log=Path("/tmp/x.log"), uefi_vars=Path("/tmp/x.fd"),
                         fw_cfg=FW_CFG_OF["uefi-http"])
    xml = spec.to_xml()
    assert '<sysinfo type="fwcfg">' in xml
    assert '<entry name="opt/org.tianocore/IPv4PXESupport">n</entry>' in xml
    assert '<entry name="opt/org.tianocore/IPv6PXESupport">n</entry>' in xml
    plain = LabDomainSpec(lab_id="flabcde", machine="uefi", firmware=Firmware.UEFI,
                          nics=(Nic("flabcdev0", "52:54:00:00:00:01", rom=False),),
                          serial_log=Path("/tmp/x.log"), uefi_vars=Path("/tmp/x.fd"))
    assert "fwcfg" not in plain.to_xml()                           # uefi-x64 keeps its PXE


def test_first_nic_boots_first() -> None:
    spec = LabDomainSpec(lab_id="flabcde", machine="twonic",
                         nics=(Nic("flabcdev0", "02:f1:ab:00:00:01"),
                               Nic("flabcdev1", "52:54:00:00:00:02")),
                         serial_log=Path("/tmp/x.log"))
    xml = spec.to_xml()
    first, second = xml.index('dev="flabcdev0"'), xml.index('dev="flabcdev1"')
    assert first < second
    assert xml.index('<boot order="1"', first) < second < xml.index('<boot order="2"')


def test_arm64_profile_is_an_aarch64_uefi_domain() -> None:
    from harness.builder.vm_driver import FOREIGN_ARCH, FW_CFG_OF
    from harness.machines.vm.domain import Accel
    from harness.machines.vm.errors import VmSpecError
    arch, emulator, code, template = FOREIGN_ARCH["uefi-arm64"]
    spec = LabDomainSpec(lab_id="flabcde", machine="arm", firmware=Firmware.UEFI,
                         nics=(Nic("flabcdev0", "52:54:00:00:00:01", rom=False),),
                         serial_log=Path("/tmp/x.log"), uefi_vars=Path("/tmp/x.fd"),
                         arch=arch, emulator=emulator, uefi_code=code,
                         uefi_vars_template=template, fw_cfg=FW_CFG_OF["uefi-arm64"])
    xml = spec.to_xml()
    assert '<type arch="aarch64" machine="virt">hvm</type>' in xml
    assert "AAVMF_CODE.fd" in xml and "qemu-system-aarch64" in xml
    assert "<apic" not in xml and '<gic version="3"' in xml
    assert phase_of("UEFI firmware\n>>Start PXE over IPv4.\n  PXE-E16: No valid offer "
                    "received.\n") == "dhcp"
    with pytest.raises(VmSpecError, match="TCG only"):
        LabDomainSpec(lab_id="flabcde", machine="arm", firmware=Firmware.UEFI,
                      nics=(Nic("flabcdev0", "52:54:00:00:00:01", rom=False),),
                      serial_log=Path("/tmp/x.log"), uefi_vars=Path("/tmp/x.fd"),
                      arch="aarch64", accel=Accel.KVM)
