"""The certification bundle: a tar.gz a third party can check without trusting the sender.

Layout (flat, no directories)::

    certification.json   the verdict, every requirement with its reason, the run's settings
    firmware-options.json  the ROM's DHCP option set (55 order, 60, 93, 94, 97, 77/175)
    rules.json           the conformance rules' findings on the captured boot
    timings.json         seconds per boot phase, read off the capture
    facts.json           what the node agent registered
    boot.pcap            the machine's DHCP/TFTP/HTTP traffic and the replies
    console.log          the serial console, when one was given
    manifest.json        sha256 and size of every file above (canonical JSON), the format
    signer.pub           the signer's ed25519 key, one OpenSSH public key line
    allowed_signers      that key for ``ssh-keygen -Y verify -I flexlab-signer``
    SHA256SUMS           ``sha256sum`` lines for every file above
    SHA256SUMS.sig       OpenSSH signature (SSHSIG, namespace ``flexlab-bundle``) of SHA256SUMS

Hashing covers the files, the signature covers the list, so changing any byte of any
file, or the list of files, is caught by :func:`harness.certify.verify.verify_bundle`,
and equally by standard tools alone (docs/CERTIFY.md)::

    ssh-keygen -Y verify -f allowed_signers -I flexlab-signer -n flexlab-bundle \
        -s SHA256SUMS.sig < SHA256SUMS && sha256sum -c SHA256SUMS

The shipped ``signer.pub``/``allowed_signers`` only say who signed: a verifier trusts
them after comparing ``ssh-keygen -l -f signer.pub`` with the fingerprint the vendor
published (or uses its own allowed_signers file).
"""

from __future__ import annotations

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
from harness.certify.keys import fingerprint, openssh_public
from harness.certify.sshsig import NAMESPACE, sign

FORMAT = "flexlab-certification-bundle/2"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
SIGNATURE = "SHA256SUMS.sig"
SIGNER = "signer.pub"
ALLOWED_SIGNERS = "allowed_signers"
PRINCIPAL = "flexlab-signer"
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


def sums_text(digests: Mapping[str, str]) -> bytes:
    """``sha256sum`` output for {name: sha256 hex}, sorted by name (``sha256sum -c`` reads it)."""
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests)).encode()


def parse_sums(data: bytes) -> dict[str, str]:
    """{name: sha256 hex} from ``sha256sum`` lines; ValueError on anything else."""
    out: dict[str, str] = {}
    for line in data.decode("utf-8").splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name or name in out:
            raise ValueError(f"bad line {line[:80]!r}")
        int(digest, 16)
        out[name] = digest
    return out


def signer_files(key: Ed25519PrivateKey) -> dict[str, bytes]:
    """``signer.pub`` and ``allowed_signers`` for the key that signs the bundle."""
    public = openssh_public(key.public_key())
    return {
        SIGNER: (openssh_public(key.public_key(), PRINCIPAL) + "\n").encode(),
        ALLOWED_SIGNERS: f'{PRINCIPAL} namespaces="{NAMESPACE}" {public}\n'.encode(),
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
    """Write the signed bundle to ``path``; return how it was signed (``fingerprint``, ...).

    ``files`` maps bundle names to bytes or to files on disk; every REQUIRED name must
    be there, and nothing outside REQUIRED + OPTIONAL, so verifiers know what to expect.
    """
    missing = [n for n in REQUIRED if n not in files]
    unknown = [n for n in files if n not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise CertifyError(f"bundle contents wrong: missing {missing}, unknown {unknown}")
    manifest = build_manifest(files)
    meta = {MANIFEST: canonical_json(manifest), **signer_files(key)}
    digests = {name: entry["sha256"] for name, entry in manifest["files"].items()}
    digests.update({name: _digest(data)[0] for name, data in meta.items()})
    sums = sums_text(digests)
    armored = sign(sums, key).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    now = time.time()
    with tarfile.open(partial, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in ((SUMS, sums), (SIGNATURE, armored), *meta.items()):
            _add(tar, name, data, now)
        for name in sorted(files):
            _add(tar, name, files[name], now)
    partial.replace(path)  # a bundle appears complete or not at all
    return {"format": FORMAT, "signed_file": SUMS, "signature_file": SIGNATURE,
            "namespace": NAMESPACE, "principal": PRINCIPAL,
            "fingerprint": fingerprint(key.public_key())}
