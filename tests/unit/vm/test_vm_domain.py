"""Domain spec → libvirt XML, compared with reference files in fixtures/domain-xml/."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.machines.vm import (
    Accel,
    DataDisk,
    DirectBoot,
    DomainSpec,
    Firmware,
    Nic,
    NicModel,
    VmSpecError,
)
from harness.machines.vm.domain import FLEXLAB_NS

pytestmark = pytest.mark.unit

REFERENCE_DIR = Path(__file__).resolve().parents[3] / "fixtures" / "domain-xml"
WORK = Path("/var/tmp/flexlab-fl3k9")


def assert_matches_reference(xml: str, request: pytest.FixtureRequest) -> None:
    """Compare with fixtures/domain-xml/<test name>.xml.

    FLEXLAB_UPDATE_REFERENCE=1 rewrites the file and still fails, so a rewrite is
    always reviewed before it is committed.
    """
    ref = REFERENCE_DIR / f"{request.node.name}.xml"
    if os.environ.get("FLEXLAB_UPDATE_REFERENCE") == "1":
        ref.write_text(xml)
        pytest.fail(f"rewrote {ref}; review the diff and rerun without FLEXLAB_UPDATE_REFERENCE")
    assert ref.exists(), f"no reference {ref}; run once with FLEXLAB_UPDATE_REFERENCE=1"
    assert xml == ref.read_text()


def bios_spec(**overrides: object) -> DomainSpec:
    fields: dict[str, object] = {
        "lab_id": "fl3k9",
        "machine": "n1",
        "nics": (Nic(tap="fl3k9-n1-0", mac="52:54:00:3a:00:01"),),
        "serial_log": WORK / "n1.serial.log",
        "data_disk": DataDisk(WORK / "n1.data.qcow2"),
    }
    fields.update(overrides)
    return DomainSpec(**fields)  # type: ignore[arg-type]


def test_bios_virtio_pxe(request: pytest.FixtureRequest) -> None:
    assert_matches_reference(bios_spec().to_xml(), request)


def test_uefi_e1000_pxe_without_rom(request: pytest.FixtureRequest) -> None:
    spec = bios_spec(
        machine="u1",
        firmware=Firmware.UEFI,
        uefi_vars=WORK / "u1.OVMF_VARS.fd",
        nics=(Nic("fl3k9-u1-0", "52-54-00-3A-00-02", NicModel.E1000, rom=False),),
        data_disk=DataDisk(WORK / "u1.data.raw", format="raw", bus="sata"),
        serial_log=WORK / "u1.serial.log",
    )
    assert_matches_reference(spec.to_xml(), request)


def test_kvm_rtl8139_two_nics(request: pytest.FixtureRequest) -> None:
    spec = bios_spec(
        machine="k1",
        accel=Accel.KVM,
        vcpus=4,
        memory_mib=8192,
        nics=(
            Nic("fl3k9-k1-0", "52:54:00:3a:00:03", NicModel.RTL8139),
            Nic("fl3k9-k1-1", "52:54:00:3a:00:04", NicModel.E1000E),
        ),
        on_reboot="restart",
        extra_metadata={"scenario": "bios-basic"},
        serial_log=WORK / "k1.serial.log",
    )
    assert_matches_reference(spec.to_xml(), request)


def test_direct_boot_no_nic(request: pytest.FixtureRequest) -> None:
    spec = bios_spec(
        machine="d1",
        nics=(),
        direct_boot=DirectBoot(Path("/srv/img/vmlinuz"), Path("/srv/img/initrd.img"),
                               "console=ttyS0 panic=-1 flexlab.poweroff=1"),
        serial_log=WORK / "d1.serial.log",
    )
    assert_matches_reference(spec.to_xml(), request)


def test_metadata_carries_lab_id_in_flexlab_namespace() -> None:
    root = ET.fromstring(bios_spec().to_xml())
    lab = root.find(f"metadata/{{{FLEXLAB_NS}}}lab")
    assert lab is not None and lab.text == "fl3k9"
    assert "fl3k9" in (root.findtext("name") or "")


def test_domain_type_follows_accelerator() -> None:
    assert ET.fromstring(bios_spec().to_xml()).get("type") == "qemu"
    assert ET.fromstring(bios_spec(accel=Accel.KVM).to_xml()).get("type") == "kvm"


def test_network_boots_before_disk() -> None:
    root = ET.fromstring(bios_spec().to_xml())
    nic_order = root.find("devices/interface/boot")
    disk_order = root.find("devices/disk/boot")
    assert nic_order is not None and disk_order is not None
    assert int(nic_order.get("order", "0")) < int(disk_order.get("order", "0"))


def test_tap_is_unmanaged_ethernet() -> None:
    iface = ET.fromstring(bios_spec().to_xml()).find("devices/interface")
    assert iface is not None and iface.get("type") == "ethernet"
    target = iface.find("target")
    assert target is not None
    assert target.attrib == {"dev": "fl3k9-n1-0", "managed": "no"}


def test_mac_is_normalised() -> None:
    assert Nic("t0", "52-54-00-AB-CD-EF").mac == "52:54:00:ab:cd:ef"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lab_id": "FL_3"}, "lab id"),
        ({"machine": "N 1"}, "machine name"),
        ({"firmware": Firmware.UEFI}, "uefi_vars"),
        ({"vcpus": 0}, "vcpus"),
        ({"memory_mib": 64}, "memory_mib"),
        ({"nics": ()}, "NIC"),
        ({"nics": (Nic("a0", "52:54:00:00:00:01"), Nic("a1", "52:54:00:00:00:01"))}, "MAC"),
        ({"on_reboot": "preserve"}, "on_reboot"),
    ],
)
def test_invalid_specs_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(VmSpecError, match=message):
        bios_spec(**overrides)


@pytest.mark.parametrize(("tap", "mac"), [("this-tap-name-is-too-long", "52:54:00:00:00:01"),
                                          ("t0", "52:54:00:00:01"), ("t0", "zz:54:00:00:00:01")])
def test_invalid_nics_are_rejected(tap: str, mac: str) -> None:
    with pytest.raises(VmSpecError):
        Nic(tap, mac)


def test_invalid_disk_is_rejected() -> None:
    with pytest.raises(VmSpecError, match="format"):
        DataDisk(WORK / "x.vmdk", format="vmdk")
