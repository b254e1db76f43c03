#!/usr/bin/env python3
"""Record a real capture of the classic non-proxy PXE set-up: the site's own dnsmasq
hands out addresses AND is the PXE boot server (option 60 PXEClient and 43 in its
address offer, answers on UDP 4011, serves TFTP).

Why: check-pcap must classify that server as a combined DHCP+PXE server (CONFORMANCE
SITE preamble) and never judge it by a ProxyDHCP's OFFER rules. The clients are the
project's firmware emulators (a BIOS PXE ROM and EDK2 UEFI x64); every packet from the
server side is real dnsmasq.

Run as root:  .venv/bin/python scripts/record-combined-pxe.py [--out DIR]
Writes real_dnsmasq-combined-pxe.pcap (the whole segment: DHCP on 67/68/4011 and the
complete TFTP reads of 3 KiB stand-in boot files) and its sidecar.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.components.dnsmasq import SiteDhcp  # noqa: E402
from harness.lab import Host, HostLink, Lab, Segment, Topology  # noqa: E402
from harness.machines.sim import EmulatorSpec, Fleet, profile  # noqa: E402

TOPOLOGY = Topology(segments=(Segment("lan"),),
                    hosts=(Host("dhcp", (HostLink("lan"),)),
                           Host("machines", (HostLink("lan", None),))))
BOOT_FILES = ("undionly.kpxe", "ipxe.efi")
SCALE = 0.1  # the emulators' clock: firmware timeouts run ten times faster
MACS = {"pxe-bios": "52:54:00:c0:b1:01", "edk2-x64": "52:54:00:c0:b1:02"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "fixtures" / "pcaps")
    args = parser.parse_args()
    with Lab(TOPOLOGY, reports_dir=REPO / "reports" / "record-combined") as lab:
        root = lab.temp_dir / "tftp"
        root.mkdir(parents=True, exist_ok=True)
        for name in BOOT_FILES:
            # stand-ins: the emulators stop once the file is read, and whole transfers
            # of a few blocks keep the committed capture small (a real ipxe.efi is 1 MB)
            (root / name).write_bytes(bytes(range(256)) * 12)
        dhcp = SiteDhcp(lab, "dhcp", "lan", name="site-dhcp-pxe")
        # the site server is also the boot server, in both classic shapes: for BIOS its
        # own PXE service (PXEClient + 43 in the address offer, the boot file by 4011),
        # for UEFI x64 next-server + file in the address offer itself (dhcp-boot). Both
        # clients must boot: a fixture where one fails would make "no failure" a lie.
        # (dnsmasq 2.90 leaves an EDK2 4011 request without 43.71 unanswered when the
        # UEFI client is given a pxe-service instead.)
        dhcp.config = dataclasses.replace(dhcp.config, extra_args=(
            "--enable-tftp", f"--tftp-root={root}",
            '--pxe-service=x86PC,"Network boot",undionly.kpxe',
            "--dhcp-match=set:efi64,option:client-arch,7",
            "--dhcp-boot=tag:efi64,ipxe.efi"))
        specs = [EmulatorSpec(mac, profile(name), stop_after="tftp")
                 for name, mac in MACS.items()]
        with dhcp:
            result = Fleet(lab, "machines", "lan", specs, scale=SCALE).run(60)
        server = lab.address("dhcp", "lan")
        lab.teardown()
        pcap = lab.pcaps["lan"]
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pcap, args.out / "real_dnsmasq-combined-pxe.pcap")
        states = {m["mac"]: m["state"] for m in result.machines}
        sidecar = {
            "what": "site dnsmasq as address server and PXE boot server (no proxy)",
            "recorded_with": "scripts/record-combined-pxe.py (firmware emulators, real dnsmasq)",
            "combined_server": server,
            "clients": MACS,
            "client_states": states,
            "time_scale": SCALE,
        }
        (args.out / "real_dnsmasq-combined-pxe.json").write_text(
            json.dumps(sidecar, indent=2) + "\n")
        print(json.dumps(sidecar, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
