"""The emulated node verifies its Control Plane over HTTPS with the CA that came with its
boot, as the real node image does (docs/NODEIMAGE.md "TLS"). The guide: certificates from a
root or internal CA; a node must not hand its join token to a server it cannot verify.

- A real Control Plane with ``--tls-dir`` and our Boot Proxy with ``--cp-ca``: the proxy's
  iPXE script loads the CA as a second initrd; the node reads it, verifies, and is Ready.
- On the node's leg an impostor presents a certificate the node must refuse (from another CA,
  for another name, expired): the node refuses with the reason, the impostor gets not one
  byte of the request, the machine ends failed.
- The Control Plane itself serves a certificate from the wrong CA: the proxy refuses it
  (cp_tls_failed reason=unknown-ca) after having synced, keeps offering its known machine
  from the cache, but cannot fetch that machine's boot data, so the node is never given a
  join token or a Control Plane to refuse: its own check is unreachable through this fault,
  which is why the impostor case above exists.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from controlplane.tls import CA_CERT, CA_KEY, TlsFiles, fault_server_cert
from harness.components.bootproxy import BootProxy
from harness.components.controlplane import ControlPlane
from harness.components.dnsmasq import SiteDhcp
from harness.lab import Lab, Topology
from harness.lab.nsthread import NamespaceWorker
from harness.lab.waits import LogLine
from harness.machines.sim import EmulatorSpec, Fleet, profile

from .webroot import CP_TOPOLOGY

pytestmark = [pytest.mark.sim, pytest.mark.timeout(180)]

CMDLINE = "flexlab.token={join_token} flexlab.cp=%s flexlab.mac={mac}"
GOOD = EmulatorSpec("52:54:00:c2:00:01", profile("ipxe-bios"))
FAULTS = {"wrong-ca": "unknown-ca", "wrong-name": "hostname-mismatch", "expired": "expired"}
VICTIMS = {fault: EmulatorSpec(f"52:54:00:c2:00:1{i}", profile("ipxe-bios"))
           for i, fault in enumerate(FAULTS)}


class Impostor:
    """A TLS server on the Control Plane's address presenting ``files``' certificate;
    counts connections and keeps every byte a client sends after the handshake."""

    def __init__(self, worker: NamespaceWorker, address: str, port: int,
                 files: TlsFiles) -> None:
        self.url = f"https://{address}:{port}"
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(files.server_cert, files.server_key)
        self.listener = worker.call(socket.create_server, (address, port))  # in the lab
        self.listener.settimeout(0.2)
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5)
                try:
                    with self.context.wrap_socket(conn, server_side=True) as tls:
                        while chunk := tls.recv(65536):
                            self.received += chunk
                except (ssl.SSLError, OSError):
                    continue  # the client refused the handshake, as it must

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()


def _fault_files(cp: ControlPlane, address: str, where: Path) -> dict[str, TlsFiles]:
    """Certificates for the impostors, made by the Control Plane's own fault generator
    from a copy of the lab CA (wrong-name and expired are signed by the CA nodes trust)."""
    assert cp.tls_dir is not None
    where.mkdir()
    for name in (CA_CERT, CA_KEY):
        shutil.copyfile(cp.tls_dir / name, where / name)
    return {fault: fault_server_cert(where, fault, [], [address]) for fault in FAULTS}


def _ca_sha256(pem: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.read_text())).hexdigest()


def _detail(machine: dict[str, Any], summary: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in machine["timeline"]["events"] if e["summary"] == summary]


def _seed(api: Any, cp_url: str, specs: dict[str, EmulatorSpec],
          profiles: dict[str, str]) -> str:
    api.create_cluster("alpha", len(specs), mode="hybrid", environment="test")
    api.upload_artifact("vmlinuz", b"K" * 4096)
    api.upload_artifact("initrd.img", b"I" * 4096)
    for name, url in profiles.items():
        api.create_profile(name, "vmlinuz", "initrd.img", CMDLINE % url)
    for host, spec in specs.items():
        api.create_machine(spec.mac, "alpha", host, host if host in profiles else "default")
    return str(api.register_proxy("bp1", ["alpha"], segments=["lan"]))


def test_a_node_verifies_the_control_plane_with_the_ca_from_its_boot(
        make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(CP_TOPOLOGY)
    cp = ControlPlane(lab, "cp", tls=True)
    address = lab.address("cp", "lan")
    impostors: list[Impostor] = []
    worker = NamespaceWorker(lab.ns("cp"))
    try:
        with cp:
            assert cp.ca_cert is not None and cp.url("lan").startswith("https://")
            files = _fault_files(cp, address, lab.temp_dir / "impostor-pki")
            for port, fault in enumerate(FAULTS, start=8443):
                impostors.append(Impostor(worker, address, port, files[fault]))
            profiles = {"default": "{cp_url}"} | {
                fault: imp.url for fault, imp in zip(FAULTS, impostors, strict=True)}
            token = _seed(cp.api, cp.url("lan"), {"good": GOOD, **VICTIMS}, profiles)
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token,
                              cp_ca=cp.ca_cert)
            with SiteDhcp(lab, "dhcp", "lan"), proxy:
                result = Fleet(lab, "machines", "lan", [GOOD, *VICTIMS.values()],
                               scale=0.1).run(90)
            records = {mac: cp.api.get_machine(mac).model_dump()
                       for mac in [GOOD.mac, *(s.mac for s in VICTIMS.values())]}
    finally:
        for imp in impostors:
            imp.close()
        worker.close()
        cp.close()

    good = result.by_mac(GOOD.mac)
    assert good["state"] == "done" and records[GOOD.mac]["state"] == "Ready", (good, records)
    ca_files = [f for f in good["files"] if f["kind"] == "initrd"
                and f["name"].endswith("/trust/cp-ca.cpio")]
    assert ca_files and ca_files[0]["status"] == 200
    assert _detail(good, "agent")[0]["cp"] == cp.url("lan")
    tls = _detail(good, "tls")
    assert len(tls) == 1 and tls[0]["ca"] == "/flexlab/cp-ca.pem"
    assert tls[0]["sha256"] == _ca_sha256(cp.ca_cert) and "flexlab lab CA" in tls[0]["subject"]
    assert "tls-refused" not in [e["summary"] for e in good["timeline"]["events"]]

    for (fault, reason), imp in zip(FAULTS.items(), impostors, strict=True):
        spec = VICTIMS[fault]
        machine = result.by_mac(spec.mac)
        refused = _detail(machine, "tls-refused")
        assert refused and refused[0]["reason"] == reason, (fault, machine["timeline"])
        assert refused[0]["host"] == address and refused[0]["url"] == imp.url
        failed = _detail(machine, "failed")
        assert machine["state"] == "failed" and failed[0]["code"] == "TLS"
        assert failed[0]["reason"] == reason and f"reason={reason}" in machine["error"]
        assert machine["registration"] is None
        assert imp.connections >= 1, fault  # the node did reach the impostor ...
        assert imp.received == b"", (fault, imp.received[:80])  # ... and sent it nothing
        assert records[spec.mac]["state"] != "Ready"


def test_a_control_plane_with_a_wrong_ca_is_refused_by_the_proxy_before_any_node(
        make_lab: Callable[[Topology], Lab]) -> None:
    lab = make_lab(CP_TOPOLOGY)
    cp = ControlPlane(lab, "cp", tls=True)
    impostor_cp = ControlPlane(lab, "cp", tls_fault="wrong-ca")  # same store, same lab CA
    proxy: BootProxy | None = None
    try:
        with cp:
            assert cp.ca_cert is not None
            token = _seed(cp.api, cp.url("lan"), {"good": GOOD}, {"default": "{cp_url}"})
            proxy = BootProxy(lab, "bp1", ["lan"], cp_url=cp.url("lan"), cp_token=token,
                              cp_ca=cp.ca_cert)
            proxy.start()
            proxy.wait_ready()
            proxy.wait_for(LogLine(r'"event": ?"assignments_updated"'), timeout=15)
        with impostor_cp, SiteDhcp(lab, "dhcp", "lan"):
            failure = proxy.wait_for(LogLine(r'^\{.*"event": ?"cp_tls_failed".*$'),
                                     timeout=30)
            result = Fleet(lab, "machines", "lan", [GOOD], scale=0.1).run(60)
            record = impostor_cp.api.get_machine(GOOD.mac).model_dump()
    finally:
        if proxy is not None:
            proxy.stop()
        impostor_cp.close()
        cp.close()

    logged = json.loads(failure[0].group(0))
    assert (logged["reason"], logged["verify_code"]) == ("unknown-ca", 20), logged
    machine = result.by_mac(GOOD.mac)
    offers = [e for e in machine["timeline"]["events"] if e["kind"] == "received"
              and e["detail"].get("src_ip") == lab.address("bp1", "lan")]
    assert offers, "a known machine is still offered its boot from the proxy's cache"
    scripts = [f for f in machine["files"] if f["kind"] == "script"]
    assert scripts and scripts[0]["status"] == 503, machine["files"]  # no boot data to give
    assert machine["state"] == "failed" and "agent" not in [
        e["summary"] for e in machine["timeline"]["events"]]
    assert record["state"] not in ("Registered", "Ready"), record
