"""A proxy reports the PXE architecture a machine booted as; not x86-64 means Rejected.

An ARM64 UEFI machine (PXE arch 11) never runs the x86-64 node agent, so the
Control Plane learns its architecture only from the Boot Proxy that saw its
DISCOVER. The guide: machines need "2+ CPU cores, x86-64 architecture".
"""

from __future__ import annotations

import pytest
from cp_helpers import site

from controlplane.client import ApiError, ControlPlaneClient
from controlplane.requirements import boot_arch_reasons

pytestmark = pytest.mark.unit


def test_reasons_by_pxe_arch() -> None:
    assert boot_arch_reasons(11) == ["arch aarch64 != x86_64 (PXE client arch 11)"]
    assert boot_arch_reasons(19) == ["arch aarch64 != x86_64 (PXE client arch 19)"]
    assert boot_arch_reasons(10) == ["arch arm != x86_64 (PXE client arch 10)"]
    assert boot_arch_reasons(6) == ["arch i686 != x86_64 (PXE client arch 6)"]
    for x64 in (7, 9, 16):
        assert boot_arch_reasons(x64) == []
    assert boot_arch_reasons(0) == []       # BIOS: 32 or 64 bits, the agent tells
    assert boot_arch_reasons(4242) == []    # unknown code: no claim


def test_arm64_boot_is_rejected_with_the_reason(admin: ControlPlaneClient) -> None:
    s = site(admin, nodes=2)
    arm, x64 = s["macs"]
    with admin.with_token(s["proxy_token"]) as proxy:
        assert proxy.report_boot_arch(x64, 7, "seg0").state == "Pending"
        answer = proxy.report_boot_arch(arm, 11, "seg0")
        later = proxy.report_boot_arch(arm, 19, "seg0")    # its HTTP boot, after PXE
    assert answer.state == "Rejected"
    assert answer.reasons == ["arch aarch64 != x86_64 (PXE client arch 11)"]
    assert later.reasons == answer.reasons          # the first reason stands
    assert admin.get_machine(arm).state == "Rejected"
    event = [e for e in admin.events() if e.subject == arm][-1]
    assert event.kind == "node.rejected"


def test_only_a_proxy_serving_the_cluster_may_report(admin: ControlPlaneClient) -> None:
    mine, other = site(admin), site(admin)
    with admin.with_token(other["proxy_token"]) as stranger_proxy, \
            pytest.raises(ApiError) as err:
        stranger_proxy.report_boot_arch(mine["macs"][0], 11)
    assert err.value.status == 403
    assert admin.get_machine(mine["macs"][0]).state == "Pending"
    with pytest.raises(ApiError) as err:
        admin.report_boot_arch(mine["macs"][0], 11)     # an admin is not a proxy
    assert err.value.status == 403
