"""A certificate authority per lab, so the Control Plane can serve HTTPS.

Each lab gets its own throw-away CA (EC P-256) and one server certificate
for the names and addresses clients use to reach the service. Clients trust
`ca_cert` only; nothing touches the host's trust store. Files already in the
directory are reused so a restarted service keeps the CA its clients trust.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ConfigError

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "server.pem"
SERVER_KEY = "server-key.pem"
VALID_DAYS = 30


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files: give `ca_cert` to clients, the other two to the server."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def make_lab_ca(directory: str | Path, server_names: list[str],
                server_ips: list[str]) -> TlsFiles:
    """Create (or reuse) a lab CA and a server certificate for the given names and IPs.

    A server certificate is reissued when it does not cover every requested
    name and IP; the CA is kept. Private keys are written mode 0600.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / CA_CERT, folder / SERVER_CERT, folder / SERVER_KEY)
    try:
        ips = [ipaddress.ip_address(ip) for ip in server_ips]
    except ValueError as exc:
        raise ConfigError(f"bad server IP for the TLS certificate: {exc}") from exc
    if not server_names and not ips:
        raise ConfigError("give at least one server name or IP for the TLS certificate")
    ca_key_path = folder / CA_KEY
    if files.ca_cert.exists() and ca_key_path.exists():
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{ca_key_path} is not an EC key; delete the directory to start over")
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, folder.name or "lab")
        _write_key(ca_key_path, ca_key)
        files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    if not _covers(files, ca_cert, server_names, ips):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _server_certificate(key, ca_key, ca_cert, server_names, ips)
        _write_key(files.server_key, key)
        files.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flexlab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _window() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    # Back-dated an hour so a lab whose clock is slightly behind still accepts it.
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=VALID_DAYS)


def _ca_certificate(key: ec.EllipticCurvePrivateKey, lab: str) -> x509.Certificate:
    start, end = _window()
    subject = _name(f"flexlab lab CA {lab}")
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True,
            content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate, names: list[str],
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address],
) -> x509.Certificate:
    start, end = _window()
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ip) for ip in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0] if names else str(ips[0])))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _covers(files: TlsFiles, ca_cert: x509.Certificate, names: list[str],
            ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    if not (files.server_cert.exists() and files.server_key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    if cert.issuer != ca_cert.subject:
        return False
    if cert.not_valid_after_utc < datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have_names = set(san.get_values_for_type(x509.DNSName))
    have_ips = set(san.get_values_for_type(x509.IPAddress))
    return set(names) <= have_names and set(ips) <= have_ips


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
