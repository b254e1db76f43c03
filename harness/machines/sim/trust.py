"""What an emulated node trusts for its Control Plane: the CA that came with its boot.

The real node (nodeimage/files/agent.sh, https.sh) finds ``/flexlab/cp-ca.pem`` in
the initramfs Linux unpacked from every initrd its iPXE script loaded; the Boot
Proxy started with ``--cp-ca`` adds that file as a second, tiny newc archive
(bootproxy.cainitrd). The emulator does what the kernel and the agent do with
those bytes: unpack the newc archives in order (a later archive's file wins),
take the CA, and verify the Control Plane's certificate against it alone,
refusing with the reason the real agent logs.
"""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bootproxy.cainitrd import CA_PATH
from harness.machines.sim.errors import SimMachineError, TlsRefused

__all__ = ["CA_PATH", "CaInfo", "CpioError", "client_context", "cp_ca", "read_newc",
           "refusal", "verify_reason"]

_MAGICS = (b"070701", b"070702")  # newc, and newc with checksums ("crc")
_HEADER = 110  # magic + 13 eight-digit hex fields
_TRAILER = "TRAILER!!!"
_S_IFMT, _S_IFREG = 0o170000, 0o100000
_PEM_BEGIN, _PEM_END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"


class CpioError(SimMachineError, ValueError):
    """A newc archive is cut short or malformed (Linux: "Initramfs unpacking failed")."""


def _pad4(offset: int) -> int:
    return (offset + 3) & ~3


def _is_newc(data: bytes, pos: int = 0) -> bool:
    return data[pos:pos + 6] in _MAGICS


def read_newc(data: bytes) -> dict[str, bytes]:
    """The regular files in one or more concatenated newc archives, by path (no leading
    ``/`` or ``./``); a later file of the same path replaces the earlier one, as the
    kernel's unpacker does. NUL padding between archives is skipped, as the kernel
    skips it. Raises :class:`CpioError` on anything else: a truncated header, a name or
    body running past the end, a bad hex field, or bytes that are not an archive."""
    files: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # padding between archives (the kernel skips NULs 4 at a time)
            pos += 1
            continue
        if not _is_newc(data, pos):
            raise CpioError(f"no newc magic at offset {pos}: {data[pos:pos + 6]!r}")
        if pos + _HEADER > len(data):
            raise CpioError(f"header at offset {pos} cut short ({len(data) - pos} bytes)")
        try:
            fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise CpioError(f"header at offset {pos} has a field that is not hex") from None
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_end = pos + _HEADER + namesize
        if namesize == 0 or name_end > len(data):
            raise CpioError(f"name of the entry at offset {pos} runs past the end")
        name = data[pos + _HEADER:name_end - 1].decode("utf-8", "replace")
        body_at = _pad4(name_end)
        body_end = body_at + size
        if body_end > len(data):
            raise CpioError(f"{name!r}: {size} bytes announced, {len(data) - body_at} left")
        pos = _pad4(body_end)
        if name == _TRAILER:
            continue  # end of this archive; another may follow
        if mode & _S_IFMT == _S_IFREG:
            files[name.lstrip("/").removeprefix("./")] = data[body_at:body_end]
    return files


def cp_ca(initrds: Iterable[bytes]) -> bytes | None:
    """The Control Plane CA (:data:`CA_PATH`) from the initrds a script loaded, in order.

    An initrd that is not an uncompressed newc archive (the node image itself, or the
    placeholder bytes a test uploads) holds nothing the emulator can read and is
    passed over; a malformed newc archive raises :class:`CpioError`.
    """
    found: bytes | None = None
    for data in initrds:
        if _is_newc(data):
            found = read_newc(data).get(CA_PATH, found)
    return found


@dataclass(frozen=True)
class CaInfo:
    """Which CA a boot trusts, as the agent logs it (``tls ca=... sha256=... subject=...``)."""

    sha256: str
    subject: str


def client_context(pem: bytes) -> tuple[ssl.SSLContext, CaInfo]:
    """A client context trusting only ``pem`` (no system store), checking the chain, the
    validity window and the host name or IP, and what the CA is. Raises ``ValueError``
    when ``pem`` holds no loadable certificate: the agent then has no CA (``no-ca``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED + check_hostname
    try:
        context.load_verify_locations(cadata=pem.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a PEM CA certificate: {exc}") from exc
    text = pem.decode("ascii")
    begin = text.index(_PEM_BEGIN)  # loaded above, so there is one
    end = text.index(_PEM_END, begin) + len(_PEM_END)
    der = ssl.PEM_cert_to_DER_cert(text[begin:end])
    certs: list[dict[str, Any]] = context.get_ca_certs()
    rdns: tuple[tuple[tuple[str, str], ...], ...] = certs[0].get("subject", ()) if certs else ()
    subject = ", ".join(f"{key}={value}" for rdn in rdns for key, value in rdn)
    return context, CaInfo(hashlib.sha256(der).hexdigest(), subject)


# OpenSSL X509_V_ERR_* codes and the reason each means, as the Boot Proxy sorts them
# (bootproxy/cptls.py) and the node's https.sh does. A copy because bootproxy.cptls
# imports the proxy's metrics and prometheus_client; a unit test holds the two equal.
_REASONS: dict[int, str] = {
    2: "unknown-ca", 7: "unknown-ca", 18: "unknown-ca", 19: "unknown-ca", 20: "unknown-ca",
    21: "unknown-ca", 9: "not-yet-valid", 10: "expired", 62: "hostname-mismatch",
    64: "hostname-mismatch",
}


def verify_reason(code: int) -> str:
    """The reason keyword for an OpenSSL verify code; anything unlisted is ``verify-failed``."""
    return _REASONS.get(code, "verify-failed")


def refusal(exc: ssl.SSLCertVerificationError, host: str) -> TlsRefused:
    """The agent's refusal for a failed verification of ``host``'s certificate."""
    code = int(exc.verify_code or 0)
    return TlsRefused(verify_reason(code), code, host,
                      str(exc.verify_message or exc.reason or exc))
