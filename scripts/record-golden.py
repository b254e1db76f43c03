#!/usr/bin/env python3
"""Record golden packet captures of real QEMU firmware against dnsmasq in proxy mode.

Why: the conformance rules and the firmware emulators are written from specs
and from what we believe firmware sends. A capture of real firmware (SeaBIOS
with the NIC's iPXE ROM, OVMF's own EDK2 PXE stack, OVMF running iPXE EFI)
is the reference both are checked against (tests/unit/rules/test_golden*.py,
tests/unit/machines/test_emulator_matches_firmware.py).

Each firmware boots in its own lab: site DHCP (dnsmasq), dnsmasq in proxy
mode serving only the VM's MAC, a web host serving an iPXE script that says
``reboot`` (QEMU runs with ``-no-reboot``, so the VM ends itself), and a tap
on the lab bridge. QEMU runs under TCG, bounded by a timeout, and is killed
by PID in every case. The segment capture is then cut down to every DHCP
packet (UDP 67/68/4011) plus the first TFTP packets, written to
``fixtures/pcaps/golden_<firmware>_dnsmasq.pcap`` with a ``.json`` sidecar
(the rule context; see tests/unit/rules/test_golden.py for the format).

Run as root:  .venv/bin/python scripts/record-golden.py [--only NAME ...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.components.bootproxy import BootProxy  # noqa: E402
from harness.components.dnsmasq import SiteDhcp  # noqa: E402
from harness.components.dnsmasq_proxy import DnsmasqProxy  # noqa: E402
from harness.lab import (  # noqa: E402
    Host,
    HostLink,
    Lab,
    Segment,
    Topology,
    names,
)
from harness.lab.sockets import tcp_listening  # noqa: E402
from harness.wait import wait_until  # noqa: E402

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
WEB_PORT = 8080
TAP = "fltapg0"
#: TFTP packets kept after the first read request (the rest of a ~1 MB transfer is noise).
TFTP_KEEP = 12
BOOT_TIMEOUT_S = 120.0

TOPOLOGY = Topology(
    segments=(Segment("lan"),),
    hosts=(
        Host("dhcp", (HostLink("lan"),)),
        Host("proxy", (HostLink("lan"),)),
        Host("web", (HostLink("lan"),)),
    ),
)


class RecordError(Exception):
    """A recording could not be made; the message says what to install or check."""


@dataclass(frozen=True)
class Firmware:
    """One real firmware to record: its name, QEMU machine arguments and the VM's MAC."""

    name: str
    mac: str
    description: str
    #: rules the capture must keep exercising (test_golden.py checks they PASS)
    expect_pass: tuple[str, ...] = ()
    #: boot files the proxy hands this firmware in the exchange (EDK2 PXE: ipxe.efi, then
    #: the chainloaded iPXE's script), to stop a VM that does not end itself
    boot_files: int = 1
    #: expect_pass with our Boot Proxy, which puts the boot file in its OFFER (no 4011 for iPXE)
    bootproxy_pass: tuple[str, ...] = ()

    def machine_args(self, workdir: Path) -> list[str]:
        """QEMU arguments selecting this firmware and its NIC (virtio-net in all three)."""
        netdev = f"tap,id=n0,ifname={TAP},script=no,downscript=no"
        if self.name == "seabios-ipxe":
            return ["-machine", "pc,graphics=off", "-netdev", netdev,
                    "-device", f"virtio-net-pci,netdev=n0,mac={self.mac}"]
        vars_fd = workdir / f"{self.name}-vars.fd"
        shutil.copy(OVMF_VARS, vars_fd)
        rom = ",romfile=" if self.name == "ovmf-pxe" else ""
        return ["-machine", "q35",
                "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                "-drive", f"if=pflash,format=raw,file={vars_fd}",
                "-netdev", netdev, "-device", f"virtio-net-pci,netdev=n0,mac={self.mac}{rom}"]


COMMON_PASS = ("OFFER-2", "ACK4011-1", "IPXE-1", "CLI-1", "CLI-2", "CLI-3", "CLI-4")
BOOTPROXY_PASS = ("OFFER-2", "IPXE-1", "CLI-1", "CLI-2", "CLI-3", "CLI-4")

FIRMWARE: tuple[Firmware, ...] = (
    Firmware("seabios-ipxe", "52:54:00:6f:00:01",
             "SeaBIOS, virtio-net with its default iPXE ROM (Debian ipxe-qemu)",
             COMMON_PASS, 1, BOOTPROXY_PASS),
    Firmware("ovmf-pxe", "52:54:00:6f:00:02",
             "OVMF (EDK2) own PXE stack, virtio-net with romfile='' (then chainloads ipxe.efi)",
             (*COMMON_PASS, "TFTP-1"), 2, (*BOOTPROXY_PASS, "ACK4011-1", "TFTP-1")),
    Firmware("ovmf-ipxe", "52:54:00:6f:00:03",
             "OVMF, virtio-net with its default iPXE EFI ROM", COMMON_PASS, 1,
             BOOTPROXY_PASS),
)


def check_host() -> None:
    """Fail early, saying what to install, when something the recording needs is missing."""
    import os

    if os.geteuid() != 0:
        raise RecordError("run as root: the lab needs network namespaces and a tap")
    for tool in ("qemu-system-x86_64", "dnsmasq", "tcpdump", "ip", "nsenter"):
        if shutil.which(tool) is None:
            raise RecordError(f"{tool} not found: run scripts/setup-host.sh")
    if not OVMF_CODE.exists() or not Path("/usr/lib/ipxe/ipxe.efi").exists():
        raise RecordError("needs the Debian packages ovmf and ipxe (scripts/setup-host.sh)")


def _start_web(lab: Lab, root: Path) -> str:
    """A static HTTP server in host ``web`` whose boot script makes iPXE reboot (ends the VM)."""
    root.mkdir(parents=True, exist_ok=True)
    # Padding lines: QEMU may exit on reboot before the console has flushed the last bytes.
    (root / "boot.ipxe").write_text("#!ipxe\necho FLEXLAB-GOLDEN-SCRIPT\n"
                                    + "echo ..........\n" * 3 + "reboot\n")
    proc = lab.start_process("web", [sys.executable, "-m", "http.server", str(WEB_PORT),
                                     "--directory", str(root)], "web")
    wait_until(lambda: tcp_listening(proc.pid, WEB_PORT) or None, timeout=15,
               what="http.server to listen", evidence=proc.log_tail)
    return f"http://{lab.address('web', 'lan')}:{WEB_PORT}"


def _assignments(lab: Lab, mac: str) -> Path:
    """A static assignments document (the Control Plane API's shape) serving only ``mac``."""
    path = lab.temp_dir / "assignments.json"
    path.write_text(json.dumps({"revision": 1, "assignments": [
        {"mac": mac, "cluster": "golden", "hostname": "golden-vm", "role": "worker",
         "profile": "default"}]}))
    return path


def _exchange_done(pcap: Path, fw: Firmware, proxy_ip: str) -> bool:
    """True once the proxy has handed the firmware every boot file it is expected to get.

    Our Boot Proxy's script does not end the VM by itself (unlike the web host's
    ``reboot`` script used with dnsmasq), so the capture tells when to stop.
    """
    from harness.capture import decode_pcap
    from harness.capture.errors import CaptureError

    try:
        cap = decode_pcap(str(pcap), require_dhcp=False)
    except CaptureError:  # tcpdump is mid-write
        return False
    answers = [e for e in cap.dhcp if e.op == 2 and e.src_ip == proxy_ip
               and e.chaddr == fw.mac and e.file]
    return len(answers) >= fw.boot_files


def record_one(fw: Firmware, out_dir: Path, proxy_kind: str = "dnsmasq") -> dict[str, object]:
    """Boot ``fw`` in a fresh lab, then write its trimmed pcap and sidecar; return a summary.

    ``proxy_kind`` is ``dnsmasq`` (dnsmasq in proxy mode) or ``bootproxy`` (ours,
    serving the VM's MAC from a static assignments file).
    """
    with Lab(TOPOLOGY) as lab:
        lab.run(None, ["ip", "tuntap", "add", "dev", TAP, "mode", "tap"])
        lab.run(None, ["ip", "link", "set", TAP, "master", names.bridge("lan"), "up"])
        web = _start_web(lab, lab.temp_dir / "www")
        site = SiteDhcp(lab, "dhcp", "lan")
        proxy: DnsmasqProxy | BootProxy
        if proxy_kind == "dnsmasq":
            proxy = DnsmasqProxy(lab, "proxy", "lan", script_url=web + "/boot.ipxe",
                                 served_macs=(fw.mac,))
            proxy_ip = proxy.server_ip
        else:
            proxy = BootProxy(lab, "proxy", ["lan"], assignments_file=_assignments(lab, fw.mac))
            proxy_ip = proxy.address("lan")
        with site, proxy:
            serial = lab.reports_dir / f"{fw.name}-serial.log"
            argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", "512", "-no-reboot",
                    "-display", "none", "-serial", f"file:{serial}", "-boot", "n",
                    *fw.machine_args(lab.temp_dir)]
            started = time.monotonic()
            qemu = lab.start_process(f"qemu-{fw.name}", argv, None)
            try:
                deadline = started + BOOT_TIMEOUT_S
                exchanged_at: float | None = None
                while qemu.running() and time.monotonic() < deadline:
                    time.sleep(0.2)
                    if proxy_kind == "dnsmasq" or exchanged_at is not None:
                        if exchanged_at is not None and time.monotonic() > exchanged_at + 1:
                            break  # 1 s more for the firmware's next packets, then stop it
                        continue
                    if _exchange_done(lab.pcaps["lan"], fw, proxy_ip):
                        exchanged_at = time.monotonic()
                finished = not qemu.running()
            finally:
                qemu.stop()  # by PID (process group); a no-op once QEMU has exited
            elapsed = time.monotonic() - started
            console = serial.read_text(errors="replace") if serial.exists() else ""
            site_ip = site.server_ip
        raw = lab.pcaps["lan"]
        lab.teardown()  # stops tcpdump, so the pcap is complete
        summary = trim(raw, out_dir / f"golden_{fw.name}_{proxy_kind}.pcap")
    sidecar = {
        "firmware": fw.description,
        "recorded_with": f"scripts/record-golden.py (QEMU TCG, proxy: {proxy_kind}, "
                         "site DHCP: dnsmasq)",
        "proxy": [proxy_ip],
        "serves": {proxy_ip: [fw.mac]},
        "site_dhcp": [site_ip],
        "expect_fail": [],
        "expect_pass": list(fw.expect_pass if proxy_kind == "dnsmasq" else fw.bootproxy_pass),
        "mac": fw.mac,
    }
    sidecar_path = out_dir / f"golden_{fw.name}_{proxy_kind}.json"
    sidecar_path.write_text(json.dumps(sidecar, indent=2) + "\n")
    summary.update(firmware=fw.name, vm_ended_itself=finished, seconds=round(elapsed, 1),
                   script_reached="FLEXLAB-GOLDEN-SCRIPT" in console)
    return summary


def trim(raw: Path, dest: Path) -> dict[str, object]:
    """Keep every IPv4 DHCP packet (67/68/4011) and the first TFTP packets; write ``dest``.

    The TFTP part is the read request to 69 plus the packets of that client
    port that follow, capped at TFTP_KEEP (a BPF filter cannot follow the
    transfer's ephemeral ports, so this is done with scapy).
    """
    from scapy.layers.inet import UDP
    from scapy.utils import rdpcap, wrpcap

    tftp_ports: set[int] = set()
    kept = []
    tftp_count = 0
    for pkt in rdpcap(str(raw)):
        if UDP not in pkt:
            continue
        udp = pkt[UDP]
        ports = {udp.sport, udp.dport}
        if ports & {67, 68, 4011}:
            kept.append(pkt)
            continue
        if udp.dport == 69:
            tftp_ports.add(udp.sport)
        if ports & ({69} | tftp_ports) and tftp_count < TFTP_KEEP:
            kept.append(pkt)
            tftp_count += 1
    wrpcap(str(dest), kept)
    return {"pcap": str(dest.relative_to(REPO)) if dest.is_relative_to(REPO) else str(dest),
            "packets": len(kept), "tftp_packets": tftp_count, "bytes": dest.stat().st_size}


def main(argv: list[str] | None = None) -> int:
    """Record every firmware (or those named by ``--only``); print one JSON line per firmware."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=[f.name for f in FIRMWARE])
    ap.add_argument("--proxy", action="append", choices=["dnsmasq", "bootproxy"],
                    help="proxy under which to record (default: dnsmasq only)")
    ap.add_argument("--out", type=Path, default=REPO / "fixtures" / "pcaps")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        check_host()
    except RecordError as exc:
        print(f"record-golden: {exc}", file=sys.stderr)
        return 2
    for fw in FIRMWARE:
        if args.only and fw.name not in args.only:
            continue
        for kind in args.proxy or ["dnsmasq"]:
            print(json.dumps(record_one(fw, args.out, kind)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
