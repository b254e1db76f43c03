"""OpenSSH's signature format (SSHSIG) for ed25519: what ``ssh-keygen -Y sign`` writes and
``ssh-keygen -Y verify`` checks, so a bundle's signature needs no flexlab to verify.

The format (OpenSSH's PROTOCOL.sshsig): the key signs, not the message, but the blob
``"SSHSIG" || string(namespace) || string("") || string(hash) || string(H(message))``;
the armored signature carries ``"SSHSIG" || uint32(1) || string(public key) ||
string(namespace) || string("") || string(hash) || string(signature)``, base64 between
``-----BEGIN/END SSH SIGNATURE-----`` lines. The namespace keeps a bundle signature from
being replayed as, say, a git commit signature made with the same key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.certify.errors import BundleError

__all__ = ["NAMESPACE", "SshSignature", "parse_signature", "sign", "verify"]

NAMESPACE = "flexlab-bundle"
MAGIC = b"SSHSIG"
VERSION = 1
KEY_TYPE = b"ssh-ed25519"
HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
LINE = 70  # ssh-keygen's line width for the armored body


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def public_blob(raw_public: bytes) -> bytes:
    """The SSH wire form of an ed25519 public key (what fingerprints and .pub lines hash)."""
    return _string(KEY_TYPE) + _string(raw_public)


def _signed_data(message: bytes, namespace: str, hash_name: str) -> bytes:
    digest = HASHES[hash_name](message).digest()
    return (MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_name.encode())
            + _string(digest))


def sign(message: bytes, key: Ed25519PrivateKey, namespace: str = NAMESPACE) -> str:
    """The armored SSHSIG of ``message`` by ``key`` (sha512, as ssh-keygen makes it)."""
    hash_name = "sha512"
    signature = key.sign(_signed_data(message, namespace, hash_name))
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    blob = (MAGIC + struct.pack(">I", VERSION) + _string(public_blob(raw))
            + _string(namespace.encode()) + _string(b"") + _string(hash_name.encode())
            + _string(_string(KEY_TYPE) + _string(signature)))
    body = base64.b64encode(blob).decode()
    lines = [body[i:i + LINE] for i in range(0, len(body), LINE)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


@dataclass(frozen=True)
class SshSignature:
    """A parsed SSHSIG: the signer's raw ed25519 key, the namespace, hash and signature."""

    public_key: bytes
    namespace: str
    hash_name: str
    signature: bytes


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise BundleError("SSH signature is truncated")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> bytes:
        return self.take(self.uint32())

    def done(self) -> None:
        if self.at != len(self.data):
            raise BundleError("SSH signature has trailing bytes")


def parse_signature(armored: bytes) -> SshSignature:
    """Decode an armored SSHSIG; BundleError says what is malformed (or not ed25519)."""
    text = armored.decode("ascii", "replace").strip().splitlines()
    if len(text) < 3 or text[0].strip() != BEGIN or text[-1].strip() != END:
        raise BundleError(f"not an SSH signature (no {BEGIN} ... {END} block)")
    try:
        blob = base64.b64decode("".join(line.strip() for line in text[1:-1]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BundleError(f"SSH signature is not valid base64 ({exc})") from exc
    r = _Reader(blob)
    if r.take(6) != MAGIC or r.uint32() != VERSION:
        raise BundleError("not an SSHSIG version 1 signature")
    key = _Reader(r.string())
    namespace = r.string().decode("utf-8", "replace")
    r.string()  # reserved
    hash_name = r.string().decode("ascii", "replace")
    sig = _Reader(r.string())
    r.done()
    if key.string() != KEY_TYPE or sig.string() != KEY_TYPE:
        raise BundleError("SSH signature is not made with an ed25519 key (ssh-ed25519)")
    public, signature = key.string(), sig.string()
    key.done()
    sig.done()
    if len(public) != 32 or len(signature) != 64:
        raise BundleError("SSH signature carries a malformed ed25519 key or signature")
    if hash_name not in HASHES:
        raise BundleError(f"SSH signature uses hash {hash_name!r}, not sha512 or sha256")
    return SshSignature(public, namespace, hash_name, signature)


def verify(message: bytes, armored: bytes, namespace: str = NAMESPACE) -> SshSignature:
    """Check ``armored`` over ``message`` in ``namespace``; return it, or raise BundleError."""
    parsed = parse_signature(armored)
    if parsed.namespace != namespace:
        raise BundleError(f"SSH signature is for namespace {parsed.namespace!r}, "
                          f"not {namespace!r}")
    try:
        Ed25519PublicKey.from_public_bytes(parsed.public_key).verify(
            parsed.signature, _signed_data(message, namespace, parsed.hash_name))
    except InvalidSignature:
        raise BundleError("signature does not match: the signed file or the signature was "
                          "changed after signing") from None
    return parsed
