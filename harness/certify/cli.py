"""``flexlab certify --iface IF --mac MAC``: boot one machine into the node image and certify it.

Runs our Control Plane and Boot Proxy on IF for that one MAC (harness/localboot.py),
captures the machine's boot traffic, asks the operator to power the machine on, shows
the phase it has reached, and once the node agent registers (or the timeout passes)
judges the KubeFlex machine requirements, the conformance rules on the captured boot and
the firmware's option set, times each phase, and writes a signed bundle. Exit status
(docs/CLI.md): 0 certified, 1 not certified, 2 bad command line or input, 3 could not
run here (missing program, not root, BMC unreachable), 130 interrupted (the Boot Proxy,
Control Plane and capture are stopped first). ``--json`` prints one
``flexlab.certify/v1`` document (docs/formats/certify.md); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import __version__
from harness.capture.decode import decode_pcap
from harness.capture.errors import CaptureError
from harness.capture.events import Capture
from harness.certify.bpf import boot_filter
from harness.certify.bundle import write_bundle
from harness.certify.errors import CertifyError
from harness.certify.firmware import discovers, firmware_kind, firmware_options
from harness.certify.ipmi import IpmiPowerOn, IpmiTarget, find_ipmitool, parse_address
from harness.certify.ipmi import power_on as ipmi_power_on
from harness.certify.judge import Requirement, judge_machine
from harness.certify.keys import default_key, fingerprint, load_private_key
from harness.certify.redfish import PowerOn, power_on
from harness.certify.timings import REGISTER_PATH, machine_addresses, phase_times
from harness.certify.watch import PHASE_TEXT, boot_view, read_capture
from harness.cli_common import add_json_flag, command_parser
from harness.cliout import emit, error_body
from harness.errors import DependencyError, FlexlabError
from harness.exitcodes import FAIL, INCOMPLETE, INTERRUPTED, OK, USAGE
from harness.lab.tcpdump import PacketCapture
from harness.localboot import LocalBoot, LocalBootConfig
from harness.macs import normalize_mac
from harness.rules.context import RuleContext
from harness.rules.engine import check_capture
from harness.signals import interruptible
from harness.wait import wait_until

FINAL_STATES = ("Registered", "Ready", "Rejected")
PASSWORD_ENV = "FLEXLAB_BMC_PASSWORD"
Out = Callable[[str], None]


def build_parser() -> argparse.ArgumentParser:
    """The command line (the lead mounts it as ``flexlab certify``)."""
    p = command_parser(
        "certify",
        "Certify one machine for KubeFlex: run a Boot Proxy and a Control Plane on "
        "IF for MAC only, boot the machine into the node image, check x86-64, >= 2 cores, "
        ">= 3 GB RAM, >= 10 GB disk, PXE from MAC, EFI or BIOS, clock within 1 s, the "
        "conformance rules on its boot, and write an ed25519-signed bundle for "
        "`flexlab verify` or `ssh-keygen -Y verify`. It only answers MAC (and, with "
        "--redfish or --ipmi, talks to that BMC).",
        {OK: "certified", FAIL: "not certified", USAGE: "bad command line or input",
         INCOMPLETE: "could not run here", INTERRUPTED: "interrupted"})
    p.add_argument("--iface", required=True, help="interface on the machine's LAN (needs IPv4)")
    add_json_flag(p, "certify", also="progress goes to stderr")
    p.add_argument("--mac", required=True, help="MAC of the NIC the machine PXE-boots from")
    p.add_argument("--out", type=Path, default=None,
                   help="output directory (default ./certify-<mac>-<UTC time>)")
    p.add_argument("--key", type=Path, default=None,
                   help="ed25519 signing key, PEM or OpenSSH (default ~/.config/flexlab/"
                   "certify-ed25519.pem, created on first use)")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="seconds to wait for the machine to register (default %(default)s)")
    p.add_argument("--console", type=Path, default=None,
                   help="serial console log of the machine to include as evidence")
    p.add_argument("--kernel", type=Path, default=None,
                   help="kernel to boot (default: the node image, built and cached)")
    p.add_argument("--initrd", type=Path, default=None, help="initrd to boot (with --kernel)")
    p.add_argument("--cp-port", type=int, default=0,
                   help="TCP port of the local Control Plane (default: any free port)")
    p.add_argument("--http-port", type=int, default=0,
                   help="TCP port of the Boot Proxy's HTTP boot server (default: any free)")
    bmc = p.add_argument_group(
        "power on through the BMC (Redfish or IPMI) instead of by hand",
        "Redfish: one system, the URL names it or the BMC manages only one; sets a one-time "
        "PXE boot (best effort), then ComputerSystem.Reset On (ForceRestart if it is on). "
        "IPMI: ipmitool -I lanplus (password passed through its environment, never argv); "
        "chassis power status, bootdev pxe (best effort), then power on (reset if it is on).")
    which = bmc.add_mutually_exclusive_group()
    which.add_argument("--redfish", metavar="URL", default=None,
                       help="e.g. https://10.0.0.9/redfish/v1/Systems/1")
    which.add_argument("--ipmi", metavar="HOST[:PORT]", default=None,
                       help="BMC address for IPMI 2.0 over LAN (port 623 by default); "
                       "needs ipmitool")
    bmc.add_argument("--bmc-user", default=None, help="BMC user name")
    bmc.add_argument("--bmc-password", default=None,
                     help=f"BMC password (better: the environment variable {PASSWORD_ENV})")
    bmc.add_argument("--redfish-insecure", action="store_true",
                     help="do not verify the BMC's TLS certificate (most are self-signed)")
    return p


@dataclass
class Outcome:
    """What a certification run found; ``certification`` is certification.json."""

    certified: bool
    requirements: list[Requirement]
    failures: list[str]
    bundle: Path
    fingerprint: str
    certification: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    rules_summary: dict[str, int] = field(default_factory=dict)
    other_rule_failures: list[str] = field(default_factory=list)


def _artifacts(args: argparse.Namespace, out: Out) -> tuple[Path, Path, str]:
    if (args.kernel is None) != (args.initrd is None):
        raise CertifyError("give both --kernel and --initrd, or neither (the node image)")
    if args.kernel is not None:
        for path in (args.kernel, args.initrd):
            if not path.is_file():
                raise CertifyError(f"{path}: no such file")
        return args.kernel, args.initrd, "given on the command line"
    out("building the node image (cached after the first time) ...")
    try:
        from nodeimage.build import build_image

        image = build_image()
    except FlexlabError as exc:
        raise CertifyError(f"cannot build the node image: {exc}") from exc
    except Exception as exc:  # nodeimage raises its own hierarchy; any failure stops here
        raise CertifyError(f"cannot build the node image: {type(exc).__name__}: {exc}") from exc
    return image.kernel, image.initrd, f"node image {image.image_id}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _registration(lb: LocalBoot, mac: str) -> tuple[float | None, str | None]:
    """(time, kind) of the node's registration event, on this host's clock."""
    for event in reversed(lb.events()):
        if event.subject == mac and event.kind in ("node.registered", "node.rejected"):
            return event.time, event.kind
    return None, None


def _wait_for_machine(lb: LocalBoot, mac: str, pcap: Path, timeout: float,
                      out: Out) -> tuple[dict[str, Any], str]:
    """Poll until the machine registers or ``timeout``; print each new phase reached."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    shown: set[str] = set()
    machine: dict[str, Any] = {}
    out(f"  [{0.0:6.1f} s] off: {PHASE_TEXT['off']}")
    while True:
        machine = lb.machine(mac).model_dump(mode="json")  # the bundle records it as JSON
        view = boot_view(mac, read_capture(pcap), lb.proxy_events(), machine["state"],
                         lb.http_port)
        for name in view.reached():
            if name not in shown:
                out(f"  [{time.monotonic() - started:6.1f} s] {name}: {PHASE_TEXT[name]}")
                shown.add(name)
        if machine["state"] in FINAL_STATES or time.monotonic() > deadline:
            return machine, view.phase
        time.sleep(0.5)  # poll interval of the progress loop


def _power_on(args: argparse.Namespace) -> PowerOn:
    password = args.bmc_password or os.environ.get(PASSWORD_ENV, "")
    return power_on(args.redfish, args.bmc_user, password, verify=not args.redfish_insecure)


def _ipmi_target(args: argparse.Namespace) -> IpmiTarget:
    """The BMC behind --ipmi, checked before anything starts (address, ipmitool present)."""
    host, port = parse_address(args.ipmi)
    password = args.bmc_password or os.environ.get(PASSWORD_ENV, "")
    return IpmiTarget(host=host, port=port, user=args.bmc_user, password=password,
                      tool=find_ipmitool())


def _ipmi_power_on(target: IpmiTarget, mac: str, out: Out) -> IpmiPowerOn:
    done = ipmi_power_on(target)
    out(f"powered {mac} on through IPMI: the BMC at {done.bmc} said power {done.power_state}, "
        f"sent {done.command}")
    for warning in done.warnings:
        out(f"  warning: {warning}")
    return done


def _register_captured(pcap: Path, mac: str, cp_port: int) -> Capture | None:
    """The capture, once it holds the agent's register request (tcpdump writes a moment
    after the Control Plane has answered)."""
    cap = read_capture(pcap)
    if cap is None:
        return None
    ips = machine_addresses(cap, mac)
    seen = any(e.kind == "request" and e.dport == cp_port and e.src_ip in ips
               and (e.path or "").startswith(REGISTER_PATH) for e in cap.http)
    return cap if seen else None


def certify(args: argparse.Namespace, out: Out = print) -> Outcome:
    """Run one certification; raise CertifyError (or FlexlabError) when it cannot run."""
    mac = normalize_mac(args.mac, "--mac")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = (args.out or Path(f"certify-{mac.replace(':', '')}-{stamp}")).resolve()
    work = out_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    if args.key is not None:
        key, key_path = load_private_key(args.key), args.key
    else:
        key, key_path, created = default_key()
        if created:
            out(f"created signing key {key_path} ({fingerprint(key.public_key())}); "
                "publish this fingerprint so others can check your bundles")
    if args.redfish and args.ipmi:  # argparse refuses both; this guards direct callers
        raise CertifyError("give --redfish or --ipmi, not both: one BMC powers the machine")
    bmc_flag = "--redfish" if args.redfish else "--ipmi" if args.ipmi else None
    if bmc_flag and not (args.bmc_user and (args.bmc_password
                                            or os.environ.get(PASSWORD_ENV))):
        raise CertifyError(f"{bmc_flag} needs --bmc-user and a password ({PASSWORD_ENV} or "
                           "--bmc-password)")
    ipmi_target = _ipmi_target(args) if args.ipmi else None
    kernel, initrd, image_note = _artifacts(args, out)
    pcap = work / "boot.pcap"
    redfish: dict[str, Any] | None = None
    ipmi: dict[str, Any] | None = None
    started = time.time()
    cfg = LocalBootConfig(iface=args.iface, macs=[mac], kernel=kernel, initrd=initrd,
                          workdir=work, cp_port=args.cp_port, http_port=args.http_port)
    with LocalBoot(cfg) as lb:
        bpf = boot_filter([mac], lb.address, [lb.http_port, lb.cp_port])
        with PacketCapture("certify-capture", args.iface, pcap, bpf=bpf):
            out(f"Boot Proxy on {args.iface} ({lb.address}) serving only {mac}; Control Plane "
                f"{lb.cp_url}")
            if args.redfish:
                done = _power_on(args)
                redfish = {"system": done.system, "power_state_before": done.power_state,
                           "reset_type": done.reset_type, "warnings": done.warnings}
                out(f"powered {mac} on through Redfish: {done.system} was "
                    f"{done.power_state}, sent ComputerSystem.Reset {done.reset_type}")
                for warning in done.warnings:
                    out(f"  warning: {warning}")
                out(f"waiting up to {args.timeout:.0f} s")
            elif ipmi_target is not None:
                ipmi = _ipmi_power_on(ipmi_target, mac, out).to_json()
                out(f"waiting up to {args.timeout:.0f} s")
            else:
                out(f"power on {mac} now (PXE boot from that NIC); waiting up to "
                    f"{args.timeout:.0f} s")
            machine, phase = _wait_for_machine(lb, mac, pcap, args.timeout, out)
            registered_at, _ = _registration(lb, mac)
            if registered_at is not None:
                try:
                    wait_until(lambda: _register_captured(pcap, mac, lb.cp_port), timeout=3.0,
                               what="the register request in the capture")
                except FlexlabError:
                    out("  (the register request is not in the capture; timings stop earlier)")
        try:
            capture = decode_pcap(str(pcap), require_dhcp=False)
        except CaptureError as exc:
            raise CertifyError(f"the boot capture is unreadable: {exc}") from exc
        proxy_ip, http_port, cp_port, cp_url = lb.address, lb.http_port, lb.cp_port, lb.cp_url
    finished = time.time()

    facts = machine.get("facts") or {}
    found = discovers(capture, mac)
    rom = found[0] if found else None
    site_dhcp = {e.server_id or e.src_ip for e in capture.dhcp
                 if e.op == 2 and e.msg_type == "OFFER" and e.yiaddr != "0.0.0.0"}
    report = check_capture(capture, RuleContext(
        proxies=frozenset({proxy_ip}), serves={proxy_ip: frozenset({mac})},
        site_dhcp=frozenset(site_dhcp),
        vendor_classes=("PXEClient", "HTTPClient", "HW-Client")))
    registered = machine.get("state") in FINAL_STATES
    if registered:
        requirements = judge_machine(facts, mac, discover_seen=bool(found),
                                     dhcp_firmware=firmware_kind(rom),
                                     registered_at=registered_at, findings=report.findings)
    else:
        requirements = [Requirement(
            "boot", False, f"last phase: {phase}", "the node agent registers",
            f"boot: {mac} did not register within {args.timeout:.0f} s; last phase reached: "
            f"{phase} ({PHASE_TEXT[phase]})")]
    failures = [r.reason for r in requirements if not r.ok]
    certified = registered and not failures
    # this port sees the machine's broadcasts but not the site server's unicast replies:
    # say so where a rule missed them, rather than blame the site
    leased_from = sorted({e.server_id for e in capture.dhcp
                          if e.op == 1 and e.chaddr == mac and e.msg_type == "REQUEST"
                          and e.server_id and e.server_id != proxy_ip})
    other = [f"{f.rule_id} {f.level.value}: {f.message}"
             + (f" (the machine did REQUEST a lease from {', '.join(leased_from)}: its "
                "unicast offer just did not pass this port)"
                if f.rule_id == "SITE-3" and leased_from else "")
             for f in report.failures() if not f.rule_id.startswith("CLI-")]
    timings = phase_times(capture, mac, proxy_ip=proxy_ip, http_port=http_port,
                          cp_port=cp_port)
    certification = {
        "format": "flexlab-certification/1",
        "verdict": "CERTIFIED" if certified else "NOT CERTIFIED",
        "certified": certified,
        "mac": mac,
        "iface": args.iface,
        "started": started,
        "finished": finished,
        "requirements": [r.to_json() for r in requirements],
        "failures": failures,
        "control_plane": {"state": machine.get("state"), "reasons": machine.get("reasons", [])},
        "last_phase": phase,
        "rules": {"summary": report.summary(), "ok": report.ok,
                  "boot_proxy_or_site_failures": other},
        "settings": {
            "timeout_s": args.timeout, "boot_proxy": proxy_ip, "control_plane": cp_url,
            "http_port": http_port, "kernel": str(kernel), "initrd": str(initrd),
            "kernel_sha256": _sha256(Path(kernel)), "initrd_sha256": _sha256(Path(initrd)),
            "image": image_note, "console": str(args.console) if args.console else None,
            "signing_key": str(key_path), "redfish": redfish, "ipmi": ipmi,
        },
        "host": {"hostname": socket.gethostname(), "kernel": platform.release(),
                 "flexlab": __version__, "python": platform.python_version()},
    }
    files: dict[str, bytes | Path] = {
        "certification.json": _json(certification),
        "firmware-options.json": _json(firmware_options(capture, mac)),
        "rules.json": _json({"summary": report.summary(), "ok": report.ok,
                             "findings": [f.to_dict() for f in report.findings]}),
        "timings.json": _json(timings),
        "facts.json": _json({"mac": mac, "state": machine.get("state"),
                             "registered_at": registered_at, "facts": facts}),
        "boot.pcap": pcap,
    }
    if args.console is not None:
        if args.console.is_file():
            files["console.log"] = args.console
        else:  # the boot is evidence enough to sign; say what is missing
            out(f"warning: --console {args.console} does not exist; bundle without console.log")
    bundle = out_dir / f"certification-{mac.replace(':', '')}.tar.gz"
    signature = write_bundle(bundle, files, key)
    return Outcome(certified, requirements, failures, bundle, signature["fingerprint"],
                   certification, timings, report.summary(), other)


def _json(doc: Any) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=True, default=str).encode() + b"\n"


def render(outcome: Outcome, out: Out = print) -> None:
    """The one-screen verdict."""
    cert = outcome.certification
    out("")
    out(f"{cert['verdict']}: {cert['mac']} ({cert['iface']})")
    for r in outcome.requirements:
        mark = "pass" if r.ok else "FAIL"
        line = f"  {mark:4}  {r.name:15} {r.measured}"
        out(line if r.ok else f"{line}\n        -> {r.reason}")
        if r.warning:
            out(f"        warning: {r.warning}")
    s = outcome.rules_summary
    out(f"  rules on the captured boot: {s.get('pass', 0)} pass, {s.get('fail', 0)} fail "
        f"({s.get('must_failures', 0)} MUST), {s.get('not-applicable', 0)} not applicable")
    for line in outcome.other_rule_failures[:5]:
        out(f"        Boot Proxy/site (does not fail the machine): {line[:240]}")
    phases = outcome.timings.get("phases", {})
    shown = [f"{name} {span['seconds']:.1f} s" for name, span in phases.items() if span]
    if shown:
        out("  timings: " + ", ".join(shown))
    out(f"  bundle: {outcome.bundle}")
    out(f"  signed by {outcome.fingerprint}; check with `flexlab verify {outcome.bundle}` "
        "or ssh-keygen -Y verify (docs/CERTIFY.md)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 certified, 1 not certified, 2 bad input, 3 could not run here,
    130 interrupted."""
    args = build_parser().parse_args(argv)
    out: Out = print
    if args.json:
        def out(line: str) -> None:
            print(line, file=sys.stderr)
    try:
        # SIGINT/SIGTERM unwind, so the Boot Proxy, Control Plane and tcpdump stop
        with interruptible():
            outcome = certify(args, out)
    except FlexlabError as exc:
        status = _status(exc)
        print(f"flexlab certify: {exc}", file=sys.stderr)
        if args.json:
            emit("certify", error_body(status, str(exc)))
        return status
    except KeyboardInterrupt:
        print("flexlab certify: interrupted; nothing was certified", file=sys.stderr)
        return INTERRUPTED
    render(outcome, out)
    if args.json:
        emit("certify", {"ok": outcome.certified, "bundle": str(outcome.bundle),
                         "fingerprint": outcome.fingerprint,
                         "certification": outcome.certification,
                         "timings": outcome.timings})
    return OK if outcome.certified else FAIL


def _status(exc: FlexlabError) -> int:
    """A CertifyError is about what the user gave (files, flags, key): 2; anything else
    that stopped the run (LocalBoot, capture, BMC, a missing program) is this host's: 3."""
    if isinstance(exc, CertifyError) and not isinstance(exc, DependencyError):
        return USAGE
    return INCOMPLETE


if __name__ == "__main__":
    sys.exit(main())
