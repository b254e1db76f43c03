"""A certificate authority per lab, so the Control Plane can serve HTTPS.

Each lab gets its own throw-away CA (EC P-256) and one server certificate
for the names and addresses clients use to reach the service. Clients trust
`ca_cert` only; nothing touches the host's trust store. Files already in the
directory are reused so a restarted service keeps the CA its clients trust.

`fault_server_cert` makes the three certificates a client must refuse (signed
by another CA, issued for another name, expired), so a lab can serve one on
purpose and check that every client says no, and why.
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
# The certificate faults a Control Plane can serve (`--tls-fault`), each one a
# reason a verifying client must give: unknown CA, hostname mismatch, expired.
TLS_FAULTS = ("wrong-ca", "wrong-name", "expired")
WRONG_NAME = "wrong-name.flexlab.invalid"

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files: give `ca_cert` to clients, the other two to the server."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class Authority:
    """A CA's key and certificate in memory, able to issue server certificates."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> bytes:
        """The CA certificate as PEM (what a client is told to trust)."""
        return self.cert.public_bytes(serialization.Encoding.PEM)


def parse_ips(server_ips: list[str]) -> list[IpAddress]:
    """The IPs as address objects; `ConfigError` names the one that is not an address."""
    try:
        return [ipaddress.ip_address(ip) for ip in server_ips]
    except ValueError as exc:
        raise ConfigError(f"bad server IP for the TLS certificate: {exc}") from exc


def make_lab_ca(directory: str | Path, server_names: list[str],
                server_ips: list[str]) -> TlsFiles:
    """Create (or reuse) a lab CA and a server certificate for the given names and IPs.

    A server certificate is reissued when it does not cover every requested
    name and IP; the CA is kept. Private keys are written mode 0600.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / CA_CERT, folder / SERVER_CERT, folder / SERVER_KEY)
    ips = parse_ips(server_ips)
    if not server_names and not ips:
        raise ConfigError("give at least one server name or IP for the TLS certificate")
    ca = _load_or_create_ca(folder, folder.name or "lab")
    if not _covers(files, ca.cert, server_names, ips):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue_server_cert(ca, key, server_names, ips)
        write_key(files.server_key, key)
        write_cert(files.server_cert, cert)
    return files


def fault_server_cert(directory: str | Path, fault: str, server_names: list[str],
                      server_ips: list[str]) -> TlsFiles:
    """A server certificate a client trusting the lab CA must refuse, for `fault`.

    `wrong-ca`: right names, signed by a second CA nobody was given;
    `wrong-name`: signed by the lab CA for `WRONG_NAME` only (no IP);
    `expired`: signed by the lab CA for the right names, expired a day ago.
    The lab CA in `directory` is created or reused as by `make_lab_ca`, so the
    returned `ca_cert` is still the one clients trust; the fault files live in
    `directory/fault-<fault>/` and are made fresh on every call.
    """
    if fault not in TLS_FAULTS:
        raise ConfigError(f"unknown TLS fault {fault!r}; pick one of {', '.join(TLS_FAULTS)}")
    folder = Path(directory)
    lab = make_lab_ca(folder, server_names, server_ips)
    ca = _load_or_create_ca(folder, folder.name or "lab")
    ips = parse_ips(server_ips)
    fault_dir = folder / f"fault-{fault}"
    fault_dir.mkdir(exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    if fault == "wrong-ca":
        impostor = new_authority(f"flexlab impostor CA {folder.name or 'lab'}")
        write_cert(fault_dir / CA_CERT, impostor.cert)
        cert = issue_server_cert(impostor, key, server_names, ips)
    elif fault == "wrong-name":
        cert = issue_server_cert(ca, key, [WRONG_NAME], [])
    else:
        cert = issue_server_cert(ca, key, server_names, ips,
                                 not_before=now - datetime.timedelta(days=2),
                                 not_after=now - datetime.timedelta(days=1))
    files = TlsFiles(lab.ca_cert, fault_dir / SERVER_CERT, fault_dir / SERVER_KEY)
    write_key(files.server_key, key)
    write_cert(files.server_cert, cert)
    return files


def _load_or_create_ca(folder: Path, lab: str) -> Authority:
    ca_cert_path, ca_key_path = folder / CA_CERT, folder / CA_KEY
    if ca_cert_path.exists() and ca_key_path.exists():
        cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{ca_key_path} is not an EC key; delete the directory to start over")
        return Authority(loaded, cert)
    ca = new_authority(f"flexlab lab CA {lab}")
    write_key(ca_key_path, ca.key)
    write_cert(ca_cert_path, ca.cert)
    return ca


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flexlab"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _window() -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    # Back-dated an hour so a lab whose clock is slightly behind still accepts it.
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=VALID_DAYS)


def new_authority(common_name: str) -> Authority:
    """A fresh self-signed CA (EC P-256, valid `VALID_DAYS`), kept in memory."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _window()
    subject = _name(common_name)
    cert = (
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
    return Authority(key, cert)


def issue_server_cert(
    ca: Authority, key: ec.EllipticCurvePrivateKey, names: list[str], ips: list[IpAddress],
    *, not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    """A TLS server certificate for `names` and `ips` signed by `ca`.

    The validity window defaults to an hour ago .. `VALID_DAYS` ahead; pass
    both ends to make a certificate that is expired or not valid yet.
    """
    if not names and not ips:
        raise ConfigError("give at least one server name or IP for the TLS certificate")
    start, end = _window()
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt += [x509.IPAddress(ip) for ip in ips]
    return (
        x509.CertificateBuilder()
        .subject_name(_name(names[0] if names else str(ips[0])))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before or start).not_valid_after(not_after or end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )


def _covers(files: TlsFiles, ca_cert: x509.Certificate, names: list[str],
            ips: list[IpAddress]) -> bool:
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


def write_cert(path: Path, cert: x509.Certificate) -> None:
    """Write a certificate as PEM (public: the default mode)."""
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key as unencrypted PKCS#8 PEM, mode 0600 from the start."""
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
