"""The certification bundle: a tar.gz a third party can check without trusting the sender.

Layout (flat, no directories)::

    certification.json   the verdict, every requirement with its reason, the run's settings
    firmware-options.json  the ROM's DHCP option set (55 order, 60, 93, 94, 97, 77/175)
    rules.json           the conformance rules' findings on the captured boot
    timings.json         seconds per boot phase, read off the capture
    facts.json           what the node agent registered
    boot.pcap            the machine's DHCP/TFTP/HTTP traffic and the replies
    console.log          the serial console, when one was given
    manifest.json        sha256 and size of every file above (canonical JSON)
    signature.json       ed25519 over the exact manifest.json bytes, the signer's raw
                         public key (base64) and its fingerprint

Hashing covers the files, the signature covers the manifest, so changing any byte of
any file, or the list of files, is caught by :func:`harness.certify.verify.verify_bundle`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harness.certify.errors import CertifyError
from harness.certify.keys import fingerprint, raw_public

FORMAT = "flexlab-certification-bundle/1"
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
REQUIRED = ("certification.json", "firmware-options.json", "rules.json", "timings.json",
            "facts.json", "boot.pcap")
OPTIONAL = ("console.log",)
CHUNK = 1 << 20


def canonical_json(doc: Any) -> bytes:
    """The one byte form of a JSON document that is signed: sorted keys, no spaces, ASCII."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _digest(source: bytes | Path) -> tuple[str, int]:
    h = hashlib.sha256()
    if isinstance(source, bytes):
        h.update(source)
        return h.hexdigest(), len(source)
    size = 0
    with source.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def build_manifest(files: Mapping[str, bytes | Path]) -> dict[str, Any]:
    """sha256 and size of every file, in the bundle's format."""
    entries = {}
    for name, source in sorted(files.items()):
        digest, size = _digest(source)
        entries[name] = {"sha256": digest, "size": size}
    return {"format": FORMAT, "files": entries}


def sign_manifest(manifest_bytes: bytes, key: Ed25519PrivateKey) -> dict[str, str]:
    """The signature document for ``manifest_bytes``."""
    public = raw_public(key.public_key())
    return {
        "algorithm": "ed25519",
        "signed_file": MANIFEST,
        "public_key": base64.b64encode(public).decode(),
        "fingerprint": fingerprint(public),
        "signature": base64.b64encode(key.sign(manifest_bytes)).decode(),
    }


def _add(tar: tarfile.TarFile, name: str, source: bytes | Path, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    info.mtime = int(mtime)
    if isinstance(source, bytes):
        info.size = len(source)
        tar.addfile(info, io.BytesIO(source))
        return
    info.size = source.stat().st_size
    with source.open("rb") as f:
        tar.addfile(info, f)


def write_bundle(path: Path, files: Mapping[str, bytes | Path],
                 key: Ed25519PrivateKey) -> dict[str, Any]:
    """Write the signed bundle to ``path``; return the signature document.

    ``files`` maps bundle names to bytes or to files on disk; every REQUIRED name must
    be there, and nothing outside REQUIRED + OPTIONAL, so verifiers know what to expect.
    """
    missing = [n for n in REQUIRED if n not in files]
    unknown = [n for n in files if n not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise CertifyError(f"bundle contents wrong: missing {missing}, unknown {unknown}")
    manifest_bytes = canonical_json(build_manifest(files))
    signature = sign_manifest(manifest_bytes, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    now = time.time()
    with tarfile.open(partial, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, manifest_bytes, now)
        _add(tar, SIGNATURE, json.dumps(signature, indent=1).encode() + b"\n", now)
        for name in sorted(files):
            _add(tar, name, files[name], now)
    partial.replace(path)  # a bundle appears complete or not at all
    return signature
