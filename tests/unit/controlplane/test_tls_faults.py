"""`--tls-fault`: the Control Plane serves a certificate verifying clients must refuse.

Each fault is checked twice: the certificate itself (issuer, names, validity)
and a real client trusting the lab CA against the running service, which must
refuse for exactly the reason the Boot Proxy reports (bootproxy.cptls).
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cp_helpers import ADMIN
from cryptography import x509

from bootproxy.cptls import tls_failure
from controlplane.client import verify_context
from controlplane.errors import ConfigError
from controlplane.tls import WRONG_NAME, fault_server_cert, make_lab_ca
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _san(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (san.get_values_for_type(x509.DNSName),
            [str(ip) for ip in san.get_values_for_type(x509.IPAddress)])


def test_each_fault_certificate_is_wrong_in_exactly_one_way(tmp_path: Path) -> None:
    lab = make_lab_ca(tmp_path, ["cp.lab"], ["10.1.2.3"])
    ca = _load(lab.ca_cert)
    now = datetime.datetime.now(datetime.UTC)

    wrong_ca = fault_server_cert(tmp_path, "wrong-ca", ["cp.lab"], ["10.1.2.3"])
    cert = _load(wrong_ca.server_cert)
    assert wrong_ca.ca_cert == lab.ca_cert and _load(wrong_ca.ca_cert) == ca
    assert cert.issuer != ca.subject and _san(cert) == (["cp.lab"], ["10.1.2.3"])
    assert cert.not_valid_after_utc > now

    wrong_name = fault_server_cert(tmp_path, "wrong-name", ["cp.lab"], ["10.1.2.3"])
    cert = _load(wrong_name.server_cert)
    cert.verify_directly_issued_by(ca)
    assert _san(cert) == ([WRONG_NAME], []) and cert.not_valid_after_utc > now

    expired = fault_server_cert(tmp_path, "expired", ["cp.lab"], ["10.1.2.3"])
    cert = _load(expired.server_cert)
    cert.verify_directly_issued_by(ca)
    assert _san(cert) == (["cp.lab"], ["10.1.2.3"]) and cert.not_valid_after_utc < now

    # The good certificate is untouched: a lab can switch the fault off again.
    assert _load(lab.server_cert) == _load(make_lab_ca(tmp_path, ["cp.lab"],
                                                       ["10.1.2.3"]).server_cert)
    with pytest.raises(ConfigError, match="wrong-ca"):
        fault_server_cert(tmp_path, "self-signed", ["cp.lab"], [])


@pytest.mark.parametrize(("fault", "reason"), [
    ("wrong-ca", "unknown-ca"), ("wrong-name", "hostname-mismatch"), ("expired", "expired"),
])
def test_the_service_serves_the_fault_and_clients_refuse_it(
    tmp_path: Path, fault: str, reason: str,
) -> None:
    proc = ControlPlaneProcess(tmp_path / "cp.sqlite3", ADMIN, extra_args=[
        "--tls-dir", str(tmp_path / "pki"), "--tls-fault", fault])
    proc.start()
    try:
        url = proc.wait_ready(verify=False)  # up, but no trusting client may believe it
        assert proc.ready is not None and proc.ready["tls_fault"] == fault
        with pytest.raises(httpx.ConnectError) as refused:
            httpx.get(f"{url}/healthz", verify=verify_context(proc.ready["ca_cert"]))
        failure = tls_failure(refused.value)
        assert failure is not None and failure.reason == reason, failure
        assert any('"tls_fault"' in line for line in proc.logs())
    finally:
        proc.stop()


def test_the_unfaulted_service_still_verifies(tmp_path: Path) -> None:
    """The control: the same lab CA and URL verify when no fault is asked for."""
    with ControlPlaneProcess(tmp_path / "cp.sqlite3", ADMIN,
                             extra_args=["--tls-dir", str(tmp_path / "pki")]) as proc:
        assert proc.ready is not None and "tls_fault" not in proc.ready
        ca = proc.ready["ca_cert"]
        assert httpx.get(f"{proc.url}/healthz", verify=verify_context(ca)).status_code == 200
        served = _load(Path(ca).parent / "server.pem")
        assert "127.0.0.1" in _san(served)[1]


def test_a_fault_needs_a_tls_dir(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controlplane", "--db", str(tmp_path / "cp.sqlite3"),
         "--listen", "127.0.0.1:0", "--admin-token", ADMIN, "--tls-fault", "expired"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and "--tls-fault needs --tls-dir" in done.stdout + done.stderr
