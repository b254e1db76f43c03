"""Every firmware profile boots against dnsmasq in proxy mode + site DHCP, on the real wire."""

from __future__ import annotations

import hashlib

import pytest

from harness.capture.decode import decode_pcap
from harness.components.dnsmasq_proxy import DnsmasqProxy
from harness.lab import Lab
from harness.machines.sim import EmulatorSpec, Fleet, profile
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture
from harness.rules.model import Level

from .webroot import start_web, write_boot_files

pytestmark = pytest.mark.sim

PROFILES = ["ipxe-bios", "pxe-bios", "edk2-x64", "intel-no97", "hw-client"]


def _mac(i: int) -> str:
    return f"52:54:00:5e:00:{i:02x}"


def test_each_profile_boots_to_its_script_and_a_stranger_gets_no_proxy_offer(
        emu_lab: Lab) -> None:
    lab = emu_lab
    served = [_mac(i + 1) for i in range(len(PROFILES))]
    stranger = _mac(0x99)
    web_root = lab.temp_dir / "www"
    files = write_boot_files(web_root, f"http://{lab.address('web', 'lan')}:8080", served)
    web = start_web(lab, web_root)
    proxy = DnsmasqProxy(lab, "proxy", "lan", script_url=web.url + "/boot/${mac}.ipxe",
                         served_macs=tuple(served))
    with proxy:
        specs = [EmulatorSpec(mac, profile(name), stop_after="script")
                 for mac, name in zip(served, PROFILES, strict=True)]
        specs.append(EmulatorSpec(stranger, profile("pxe-bios"), stop_after="script"))
        result = Fleet(lab, "machines", "lan", specs, scale=0.1).run(timeout=120)
    result.write(lab.reports_dir / "machines.json")

    for mac, name in zip(served, PROFILES, strict=True):
        m = result.by_mac(mac)
        assert m["state"] == "done", (name, m["error"], m["timeline"])
        fetched = {f["kind"] if f["proto"] == "http" else "tftp": f for f in m["files"]}
        assert fetched["kernel"]["sha256"] == hashlib.sha256(files["vmlinuz"]).hexdigest()
        assert fetched["initrd"]["sha256"] == hashlib.sha256(files["initrd.img"]).hexdigest()
        assert fetched["script"]["name"] == f"{web.url}/boot/{mac}.ipxe"
        if name != "ipxe-bios":  # an iPXE ROM is given the script at once (IPXE-1)
            binary = "undionly.kpxe" if profile(name).arch == 0 else "ipxe.efi"
            real = (lab.temp_dir / "dnsmasq-proxy-lan" / "tftp" / binary).read_bytes()
            assert fetched["tftp"]["name"] == binary
            assert fetched["tftp"]["sha256"] == hashlib.sha256(real).hexdigest()

    s = result.by_mac(stranger)
    assert s["state"] == "failed" and s["error"].startswith("PXE-E53"), s
    offers = [e["detail"] for e in s["timeline"]["events"]
              if e["kind"] == "received" and e["summary"] == "OFFER"]
    assert offers, "the site DHCP server should still have offered an address"
    assert not [o for o in offers if o["proxy"] or o["pxe"]]

    pcap = lab.pcaps["lan"]
    lab.teardown()
    cap = decode_pcap(str(pcap))
    # SILENT-5: dnsmasq sent nothing at all to the stranger
    proxy_ip = proxy.server_ip
    assert not [e for e in cap.dhcp if e.chaddr == stranger and e.src_ip == proxy_ip]
    # EDK2 sends its boot-server request from port 4011 (CONFORMANCE: ACK4011-1)
    # (the ipxe.efi it chainloads then sends from 68, as iPXE does)
    to_4011 = [e for e in cap.dhcp if e.chaddr == served[2] and e.dport == 4011]
    edk2 = [e for e in to_4011 if (e.vendor_class or "").endswith("UNDI:003000")]
    ipxe = [e for e in to_4011 if (e.vendor_class or "").endswith("UNDI:003010")]
    assert edk2 and all(e.sport == 4011 for e in edk2)
    assert all(e.sport == 68 for e in ipxe)

    # The rules engine on the same capture: the emulators' own traffic must classify as
    # real firmware (CLI-*), and dnsmasq, the reference proxy, must pass every MUST rule.
    report = check_capture(cap, RuleContext(
        proxies=frozenset({proxy_ip}), serves={proxy_ip: frozenset(served)},
        site_dhcp=frozenset({lab.address("dhcp", "lan")}),
        vendor_classes=("PXEClient", "HTTPClient", "HW-Client"), time_scale=0.1))
    for f in report.findings:
        if f.verdict.value != "pass":
            print(f.rule_id, f.verdict.value, f.level.value, f.message[:160])
    cli = [(f.rule_id, f.client) for f in report.failures() if f.rule_id.startswith("CLI-")]
    assert cli == [("CLI-1", served[PROFILES.index("intel-no97")])], cli  # its missing 97
    assert report.ok, report.failures(Level.MUST)
