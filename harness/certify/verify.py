"""``flexlab verify BUNDLE [--pubkey FILE]``: is this certification bundle intact and whose is it.

Checks, in order: the archive is a readable tar.gz of plain files with safe flat names
(no absolute paths, no ``..``, no links or devices, no duplicates); the signature over
``manifest.json`` holds for the public key the bundle carries (and that key is the one
given with ``--pubkey``); the manifest lists exactly the files present, every required
one among them; every file's size and sha256 match the manifest. Nothing is extracted
to disk: members are streamed and hashed. Prints VALID or INVALID with the reason;
exit 0 or 1 (2 when the command line itself is wrong).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from harness.certify.bundle import CHUNK, FORMAT, MANIFEST, REQUIRED, SIGNATURE
from harness.certify.errors import BundleError
from harness.certify.keys import fingerprint, load_public_key, raw_public

MAX_JSON = 16 << 20   # manifest/signature/certification larger than this are not ours


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
                keep = name.endswith(".json")
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


def _check_signature(manifest_bytes: bytes, sig_doc: Any,
                     expected: Ed25519PublicKey | None) -> str:
    if not isinstance(sig_doc, dict) or sig_doc.get("algorithm") != "ed25519":
        raise BundleError(f"{SIGNATURE}: not an ed25519 signature document")
    try:
        public = base64.b64decode(str(sig_doc.get("public_key", "")), validate=True)
        signature = base64.b64decode(str(sig_doc.get("signature", "")), validate=True)
        key = Ed25519PublicKey.from_public_bytes(public)
    except (ValueError, binascii.Error) as exc:
        raise BundleError(f"{SIGNATURE}: public key or signature is malformed ({exc})") from exc
    fp = fingerprint(public)
    if sig_doc.get("fingerprint") != fp:
        raise BundleError(f"{SIGNATURE}: fingerprint {sig_doc.get('fingerprint')!r} does not "
                          f"belong to the key it carries ({fp})")
    try:
        key.verify(signature, manifest_bytes)
    except InvalidSignature:
        raise BundleError(f"signature does not match {MANIFEST}: the manifest or the "
                          "signature was changed after signing") from None
    if expected is not None and raw_public(expected) != public:
        raise BundleError(f"signed by {fp}, not by the given --pubkey "
                          f"({fingerprint(expected)})")
    return fp


def verify_bundle(path: Path, pubkey: Ed25519PublicKey | None = None) -> Verified:
    """Check ``path`` completely; return what it says, or raise BundleError with the reason."""
    digests, small = _read_members(path)
    for name in (MANIFEST, SIGNATURE):
        if name not in digests:
            raise BundleError(f"{name} is missing: this is not a flexlab certification bundle")
    fp = _check_signature(small[MANIFEST], _json(SIGNATURE, small[SIGNATURE]), pubkey)
    manifest = _json(MANIFEST, small[MANIFEST])
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{MANIFEST}: unknown format (expected {FORMAT})")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{MANIFEST}: no file list")
    present = set(digests) - {MANIFEST, SIGNATURE}
    listed = set(files)
    if listed - present:
        raise BundleError(f"missing file(s) listed in the manifest: {sorted(listed - present)}")
    if present - listed:
        raise BundleError(f"extra file(s) not in the manifest: {sorted(present - listed)}")
    absent = [n for n in REQUIRED if n not in listed]
    if absent:
        raise BundleError(f"required file(s) missing: {absent}")
    for name in sorted(listed):
        entry = files[name]
        digest, size = digests[name]
        if not isinstance(entry, dict):
            raise BundleError(f"{MANIFEST}: entry for {name} is malformed")
        if entry.get("size") != size:
            raise BundleError(f"{name}: size {size} != {entry.get('size')} in the manifest")
        if entry.get("sha256") != digest:
            raise BundleError(f"{name}: sha256 does not match the manifest (file changed)")
    cert = _json("certification.json", small["certification.json"])
    return Verified(path, fp, files, cert if isinstance(cert, dict) else {})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``flexlab verify``: VALID/INVALID with the reason; exit 0/1."""
    parser = argparse.ArgumentParser(
        prog="flexlab verify",
        description="Check a certification bundle made by `flexlab certify`: every file's "
        "sha256 and size against the signed manifest, no extra or missing files, the ed25519 "
        "signature, and (with --pubkey) that the signer is that key.")
    parser.add_argument("bundle", type=Path, help="the .tar.gz bundle")
    parser.add_argument("--pubkey", type=Path, default=None,
                        help="the signer's key you expect: PEM public or private key, or "
                        "base64 of the 32 raw bytes")
    args = parser.parse_args(argv)
    try:
        expected = load_public_key(args.pubkey) if args.pubkey else None
        verified = verify_bundle(args.bundle, expected)
    except BundleError as exc:
        print(f"INVALID: {exc}")
        return 1
    cert = verified.certification
    print(f"VALID: {args.bundle}")
    print(f"  signer      {verified.fingerprint}")
    print(f"  files       {len(verified.files)} checked against the manifest")
    if cert:
        print(f"  machine     {cert.get('mac', '?')}: {cert.get('verdict', '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
