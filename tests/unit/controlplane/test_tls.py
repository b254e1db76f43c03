"""A lab CA per lab, and the service over HTTPS trusting only that CA."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import httpx
import pytest
from cp_helpers import ADMIN
from cryptography import x509

from controlplane.client import verify_context
from controlplane.tls import make_lab_ca
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit


def test_make_lab_ca_issues_a_server_cert_for_names_and_ips(tmp_path: Path) -> None:
    files = make_lab_ca(tmp_path / "pki", ["cp.lab"], ["10.1.2.3"])
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["cp.lab"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600
    first_cert, first_ca = files.server_cert.read_bytes(), files.ca_cert.read_bytes()
    again = make_lab_ca(tmp_path / "pki", ["cp.lab"], ["10.1.2.3"])
    assert again.server_cert.read_bytes() == first_cert
    wider = make_lab_ca(tmp_path / "pki", ["cp.lab", "other"], ["10.1.2.3"])
    assert wider.server_cert.read_bytes() != first_cert
    assert wider.ca_cert.read_bytes() == first_ca


def test_service_speaks_https_with_the_lab_ca(tmp_path: Path) -> None:
    proc = ControlPlaneProcess(tmp_path / "cp.sqlite3", ADMIN,
                               extra_args=["--tls-dir", str(tmp_path / "pki")])
    proc.start()
    try:
        url = proc.wait_ready()  # verifies /healthz against the CA its ready line names
        ca = proc.ready["ca_cert"] if proc.ready else ""
        assert url.startswith("https://127.0.0.1:")
        assert httpx.get(f"{url}/healthz", verify=verify_context(ca)).json() == {"status": "ok"}
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/healthz")  # the system trust store does not know the lab CA
    finally:
        proc.stop()
