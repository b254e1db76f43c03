"""``flexlab verify BUNDLE [--pubkey FILE] [--json]``: the command line around
:func:`harness.certify.verify.verify_bundle`, with the shared output contract
(docs/CLI.md): exit 0 VALID, 1 INVALID, 2 bad command line or unreadable --pubkey;
``--json`` prints one ``flexlab.verify/v1`` document (docs/formats/verify.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from harness.certify.errors import BundleError
from harness.certify.keys import load_public_key
from harness.certify.verify import verify_bundle
from harness.cli_common import add_json_flag, command_parser
from harness.cliout import emit
from harness.exitcodes import FAIL, OK, USAGE


def build_parser() -> argparse.ArgumentParser:
    """Arguments of ``flexlab verify`` (exposed for completion and tests)."""
    parser = command_parser(
        "verify",
        "Check a certification bundle made by `flexlab certify`: the OpenSSH "
        "(SSHSIG) ed25519 signature over SHA256SUMS, every file's sha256 and size, no extra "
        "or missing files, and (with --pubkey) that the signer is that key. The same "
        "signature verifies with `ssh-keygen -Y verify` (docs/CERTIFY.md).",
        {OK: "VALID", FAIL: "INVALID", USAGE: "bad command line or --pubkey"})
    parser.add_argument("bundle", type=Path, help="the .tar.gz bundle")
    parser.add_argument("--pubkey", type=Path, default=None,
                        help="the signer's key you expect: an OpenSSH public key (.pub or "
                        "allowed_signers line), a PEM public or private key, or base64 of "
                        "the 32 raw bytes")
    add_json_flag(parser, "verify")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``flexlab verify``: VALID/INVALID with the reason."""
    args = build_parser().parse_args(argv)
    try:
        expected = load_public_key(args.pubkey) if args.pubkey else None
    except BundleError as exc:  # the key the user gave is unusable: their input
        print(f"flexlab verify: {exc}", file=sys.stderr)
        if args.json:
            emit("verify", {"ok": False, "valid": False, "exit_status": USAGE,
                            "bundle": str(args.bundle), "error": str(exc)})
        return USAGE
    try:
        verified = verify_bundle(args.bundle, expected)
    except BundleError as exc:
        if args.json:
            emit("verify", {"ok": False, "valid": False, "bundle": str(args.bundle),
                            "reason": str(exc)})
        else:
            print(f"INVALID: {exc}")
        return FAIL
    cert = verified.certification
    if args.json:
        emit("verify", {"ok": True, "valid": True, "bundle": str(args.bundle),
                        "signer": verified.fingerprint, "files": sorted(verified.files),
                        "machine": cert.get("mac"), "verdict": cert.get("verdict")})
        return OK
    print(f"VALID: {args.bundle}")
    print(f"  signer      {verified.fingerprint}")
    print(f"  files       {len(verified.files)} checked against the manifest")
    if cert:
        print(f"  machine     {cert.get('mac', '?')}: {cert.get('verdict', '?')}")
    return OK
