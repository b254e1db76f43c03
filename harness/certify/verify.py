"""``flexlab verify BUNDLE [--pubkey FILE]``: is this certification bundle intact and whose is it.

Checks, in order: the archive is a readable tar.gz of plain files with safe flat names
(no absolute paths, no ``..``, no links or devices, no duplicates); ``SHA256SUMS.sig`` is
a valid OpenSSH signature (SSHSIG, namespace ``flexlab-bundle``) over ``SHA256SUMS`` by
the key it carries (and that key is the one given with ``--pubkey``); SHA256SUMS lists
exactly the files present and every one's sha256 matches; ``signer.pub`` and
``allowed_signers`` name the signing key; the manifest agrees (sizes too) and lists every
required file. These are the checks ``ssh-keygen -Y verify`` + ``sha256sum -c`` make,
plus the ones they cannot (extra files, sizes, the layout). Nothing is extracted to disk:
members are streamed and hashed. Prints VALID or INVALID with the reason; exit 0 or 1
(2 when the command line itself is wrong).
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from harness.certify.bundle import (
    ALLOWED_SIGNERS,
    CHUNK,
    FORMAT,
    MANIFEST,
    REQUIRED,
    SIGNATURE,
    SIGNER,
    SUMS,
    parse_sums,
)
from harness.certify.errors import BundleError
from harness.certify.keys import fingerprint, public_key_from, raw_public
from harness.certify.sshsig import verify as verify_signature

MAX_JSON = 16 << 20   # manifest/signature/certification larger than this are not ours
KEPT = (SUMS, SIGNATURE, SIGNER, ALLOWED_SIGNERS)  # small files read whole besides *.json
LEGACY_SIGNATURE = "signature.json"  # format 1 (flexlab's own signature document)


@dataclass
class Verified:
    """A bundle that passed every check: who signed it and what it says."""

    path: Path
    fingerprint: str
    files: dict[str, dict[str, Any]]
    certification: dict[str, Any] = field(default_factory=dict)


def safe_member_name(name: str) -> bool:
    """True for a flat, relative, plain file name (what our bundles contain, nothing else)."""
    return (bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")
            and "\x00" not in name)


def _read_members(path: Path) -> tuple[dict[str, tuple[str, int]], dict[str, bytes]]:
    """Stream every member: (sha256, size) for all, the bytes of the small JSON ones."""
    digests: dict[str, tuple[str, int]] = {}
    small: dict[str, bytes] = {}
    try:
        tar = tarfile.open(path, "r:gz")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError as exc:
        raise BundleError(f"{path}: no such file") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{path}: not a readable tar.gz ({exc})") from exc
    try:
        with tar:
            for member in tar:
                name = member.name
                if not safe_member_name(name):
                    raise BundleError(f"unsafe member name {name!r}: bundles hold flat file "
                                      "names only (no absolute paths, directories or ..)")
                if not member.isreg():
                    kind = ("a link" if member.issym() or member.islnk() else
                            "a directory" if member.isdir() else "not a regular file")
                    raise BundleError(f"member {name!r} is {kind}: bundles hold plain files only")
                if name in digests:
                    raise BundleError(f"member {name!r} appears twice")
                source = tar.extractfile(member)
                if source is None:
                    raise BundleError(f"member {name!r} has no data")
                h = hashlib.sha256()
                size = 0
                keep = name.endswith(".json") or name in KEPT
                kept = bytearray()
                while chunk := source.read(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
                    if keep:
                        if size > MAX_JSON:
                            raise BundleError(f"member {name!r} is over {MAX_JSON} bytes")
                        kept += chunk
                digests[name] = (h.hexdigest(), size)
                if keep:
                    small[name] = bytes(kept)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"{path}: archive is damaged ({exc})") from exc
    return digests, small


def _json(name: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise BundleError(f"{name} is not valid JSON ({exc})") from exc


def _check_signature(sums: bytes, armored: bytes, expected: Ed25519PublicKey | None) -> bytes:
    """The signing key (raw) once the SSHSIG over SHA256SUMS holds (by ``expected``)."""
    signed = verify_signature(sums, armored)
    if expected is not None and raw_public(expected) != signed.public_key:
        raise BundleError(f"signed by {fingerprint(signed.public_key)}, not by the given "
                          f"--pubkey ({fingerprint(expected)})")
    return signed.public_key


def _check_sums(sums: bytes, digests: dict[str, tuple[str, int]]) -> set[str]:
    """SHA256SUMS lists exactly the members present (bar itself and its signature), each
    with its real sha256; return the listed names."""
    try:
        listed = parse_sums(sums)
    except ValueError as exc:
        raise BundleError(f"{SUMS} is not sha256sum output ({exc})") from exc
    present = set(digests) - {SUMS, SIGNATURE}
    if set(listed) - present:
        raise BundleError(f"missing file(s) listed in {SUMS}: {sorted(set(listed) - present)}")
    if present - set(listed):
        raise BundleError(f"extra file(s) not in {SUMS}: {sorted(present - set(listed))}")
    for name in sorted(listed):
        if listed[name] != digests[name][0]:
            raise BundleError(f"{name}: sha256 does not match {SUMS} (file changed)")
    return set(listed)


def _check_manifest(manifest: Any, listed: set[str],
                    digests: dict[str, tuple[str, int]]) -> dict[str, dict[str, Any]]:
    """The manifest's format, its files (the signed list less the signer files), sizes."""
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST}: unknown format (expected {FORMAT})")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{MANIFEST}: no file list")
    payload = listed - {MANIFEST, SIGNER, ALLOWED_SIGNERS}
    if set(files) != payload:
        raise BundleError(f"{MANIFEST} and {SUMS} list different files: "
                          f"{sorted(set(files) ^ payload)}")
    absent = [n for n in REQUIRED if n not in files]
    if absent:
        raise BundleError(f"required file(s) missing: {absent}")
    for name in sorted(files):
        entry = files[name]
        digest, size = digests[name]
        if not isinstance(entry, dict):
            raise BundleError(f"{MANIFEST}: entry for {name} is malformed")
        if entry.get("size") != size:
            raise BundleError(f"{name}: size {size} != {entry.get('size')} in the manifest")
        if entry.get("sha256") != digest:
            raise BundleError(f"{name}: sha256 does not match the manifest (file changed)")
    return files


def verify_bundle(path: Path, pubkey: Ed25519PublicKey | None = None) -> Verified:
    """Check ``path`` completely; return what it says, or raise BundleError with the reason."""
    digests, small = _read_members(path)
    if LEGACY_SIGNATURE in digests and SIGNATURE not in digests:
        raise BundleError(f"{LEGACY_SIGNATURE}: a format 1 bundle (flexlab's own signature "
                          "document, fingerprint not OpenSSH's) is no longer accepted; "
                          "certify the machine again")
    for name in (SUMS, SIGNATURE, MANIFEST, SIGNER, ALLOWED_SIGNERS):
        if name not in digests:
            raise BundleError(f"{name} is missing: this is not a flexlab certification bundle")
    signer = _check_signature(small[SUMS], small[SIGNATURE], pubkey)
    fp = fingerprint(signer)
    listed = _check_sums(small[SUMS], digests)
    for name in (SIGNER, ALLOWED_SIGNERS):
        if raw_public(public_key_from(small[name], name)) != signer:
            raise BundleError(f"{name} names another key than the one that signed ({fp})")
    files = _check_manifest(_json(MANIFEST, small[MANIFEST]), listed, digests)
    cert = _json("certification.json", small["certification.json"])
    return Verified(path, fp, files, cert if isinstance(cert, dict) else {})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``flexlab verify`` (the command line lives in
    :mod:`harness.certify.cli_verify`, with ``--json``; kept here for old callers)."""
    from harness.certify.cli_verify import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
