"""The signer's ed25519 key: load it, create the default one on first use, fingerprint it.

The default key lives in ``~/.config/flexlab/certify-ed25519.pem`` (PKCS#8 PEM, no
passphrase, mode 0600) so a vendor signs every bundle with one identity they can
publish; ``--key FILE`` names another one (PKCS#8 PEM or an unencrypted OpenSSH key from
``ssh-keygen -t ed25519``). Fingerprints are OpenSSH's: ``SHA256:`` and the unpadded
base64 of sha256 over the key's SSH wire form, exactly what ``ssh-keygen -l`` prints.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from harness.certify.errors import BundleError, CertifyError
from harness.certify.sshsig import KEY_TYPE, public_blob

DEFAULT_KEY = Path("~/.config/flexlab/certify-ed25519.pem")


def raw_public(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key (what the bundle carries, base64)."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | bytes) -> str:
    """The key's fingerprint as ``ssh-keygen -l`` prints it (``SHA256:`` + unpadded base64
    of sha256 over the SSH wire form); ``key`` may be the 32 raw bytes."""
    raw = key if isinstance(key, bytes) else raw_public(key)
    digest = hashlib.sha256(public_blob(raw)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def openssh_public(key: Ed25519PublicKey | bytes, comment: str = "") -> str:
    """The key as one OpenSSH public key line (``ssh-ed25519 AAAA... comment``)."""
    raw = key if isinstance(key, bytes) else raw_public(key)
    line = f"{KEY_TYPE.decode()} {base64.b64encode(public_blob(raw)).decode()}"
    return f"{line} {comment}".rstrip()


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read an unencrypted PEM ed25519 private key; CertifyError says what is wrong."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertifyError(f"cannot read signing key {path}: {exc.strerror}") from exc
    try:
        if b"OPENSSH PRIVATE KEY" in data:
            key: object = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertifyError(
            f"{path} is not an unencrypted PEM or OpenSSH private key ({exc}); create one "
            "with `ssh-keygen -t ed25519 -N '' -f KEY` or omit --key"
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
    """A public key from an OpenSSH public key line (a ``.pub`` or an allowed_signers line),
    a PEM public key, a PEM or OpenSSH private key, or base64 of the 32 raw bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot read --pubkey {path}: {exc.strerror}") from exc
    return public_key_from(data, f"--pubkey {path}")


def public_key_from(data: bytes, source: str) -> Ed25519PublicKey:
    """:func:`load_public_key` on bytes; ``source`` names them in the BundleError."""
    text = data.strip()
    key: object
    words = text.split()
    try:
        if KEY_TYPE in words[:-1]:  # "[principal [options]] ssh-ed25519 AAAA... [comment]"
            at = words.index(KEY_TYPE)
            key = serialization.load_ssh_public_key(b" ".join(words[at:at + 2]))
        elif b"OPENSSH PRIVATE KEY" in text:
            key = serialization.load_ssh_private_key(text, password=None).public_key()
        elif b"PRIVATE KEY" in text:
            key = serialization.load_pem_private_key(text, password=None).public_key()
        elif b"PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except (ValueError, TypeError) as exc:
        raise BundleError(f"{source}: not an ed25519 key in OpenSSH, PEM or raw "
                          f"base64 form ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BundleError(f"{source} holds a {type(key).__name__}, not an ed25519 key")
    return key
