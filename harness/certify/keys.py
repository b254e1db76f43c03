"""The signer's ed25519 key: load it, create the default one on first use, fingerprint it.

The default key lives in ``~/.config/flexlab/certify-ed25519.pem`` (PKCS#8 PEM, no
passphrase, mode 0600) so a vendor signs every bundle with one identity they can
publish; ``--key FILE`` names another one.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.certify.errors import BundleError, CertifyError

DEFAULT_KEY = Path("~/.config/flexlab/certify-ed25519.pem")


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key (what the bundle carries, base64)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | bytes) -> str:
    """``SHA256:<base64>`` of the raw public key: short enough to read out on a call."""
    raw = key if isinstance(key, bytes) else raw_public(key)
    digest = hashlib.sha256(raw).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted PEM ed25519 private key; CertifyError says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertifyError(f"cannot read signing key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertifyError(
            f"{path} is not an unencrypted PEM private key ({exc}); create one with "
            "`openssl genpkey -algorithm ed25519 -out KEY.pem` or omit --key"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CertifyError(f"{path} holds a {type(key).__name__}, not an ed25519 key")
    return key


def default_key(path: Path | None = None) -> tuple[Ed25519PrivateKey, Path, bool]:
    """The default signing key, created (mode 0600) when absent: (key, path, created)."""
    target = (path or DEFAULT_KEY).expanduser()
    if target.exists():
        return load_private_key(target), target, False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        # O_EXCL: never overwrite a key another run created a moment ago
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_private_key(target), target, False
    except OSError as exc:
        raise CertifyError(f"cannot create signing key {target}: {exc.strerror}; "
                           "pass --key FILE") from exc
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key, target, True


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key from a PEM public key, a PEM private key, or base64 of the 32 raw bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read --pubkey {path}: {exc.strerror}") from exc
    text = data.strip()
    key: object
    try:
        if b"PRIVATE KEY" in text:
            key = serialization.load_pem_private_key(text, password=None).public_key()
        elif b"PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError) as exc:
        raise BundleError(f"--pubkey {path}: not an ed25519 key in PEM or raw base64 ({exc})"
                          ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"--pubkey {path} holds a {type(key).__name__}, not an ed25519 key")
    return key
