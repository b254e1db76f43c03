"""Signed bundles: a round trip verifies; any change to a file, the manifest, the checksum
list, the signature, the signer files or the member list, a wrong --pubkey or an unsafe tar
member makes verify say INVALID. (ssh-keygen's view of the same bundles:
test_bundle_sshkeygen.py.)"""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sample_bundle import FILES, sums_covering

from harness.certify.bundle import (
    ALLOWED_SIGNERS,
    MANIFEST,
    SIGNATURE,
    SIGNER,
    SUMS,
    parse_sums,
    write_bundle,
)
from harness.certify.errors import BundleError, CertifyError
from harness.certify.keys import default_key, fingerprint, load_public_key, openssh_public
from harness.certify.sshsig import sign
from harness.certify.verify import main as verify_main
from harness.certify.verify import verify_bundle

pytestmark = pytest.mark.unit


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for m in tar:
            f = tar.extractfile(m)
            assert f is not None
            out[m.name] = f.read()
        return out


def _rewrite(path: Path, members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)


def _pubkey_file(tmp_path: Path, key: Ed25519PrivateKey, name: str = "pub.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def test_round_trip_is_valid_and_names_the_signer(bundle: Path, key: Ed25519PrivateKey,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    verified = verify_bundle(bundle, key.public_key())
    assert verified.fingerprint == fingerprint(key.public_key())
    assert set(verified.files) == set(FILES)
    assert verified.certification["verdict"] == "CERTIFIED"
    assert verify_main([str(bundle), "--pubkey", str(_pubkey_file(tmp_path, key))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VALID") and fingerprint(key.public_key()) in out
    members = _members(bundle)
    assert set(members) == set(FILES) | {MANIFEST, SUMS, SIGNATURE, SIGNER, ALLOWED_SIGNERS}
    assert set(parse_sums(members[SUMS])) == set(members) - {SUMS, SIGNATURE}
    assert members[SIGNER].decode().startswith(openssh_public(key.public_key()))
    assert members[SIGNATURE].startswith(b"-----BEGIN SSH SIGNATURE-----\n")


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_changed_file_is_invalid(bundle: Path, name: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    members = _members(bundle)
    members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])  # same size, one bit
    _rewrite(bundle, members)
    assert verify_main([str(bundle)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID") and name in out and "sha256" in out


def test_a_truncated_file_is_invalid(bundle: Path) -> None:
    members = _members(bundle)
    members["boot.pcap"] = members["boot.pcap"][:100]
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match=r"boot\.pcap: sha256 does not match"):
        verify_bundle(bundle)


def test_a_changed_manifest_is_caught_by_the_signed_sums(bundle: Path) -> None:
    members = _members(bundle)
    manifest = json.loads(members[MANIFEST])
    manifest["files"]["boot.pcap"]["size"] += 1
    members[MANIFEST] = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match=r"manifest\.json: sha256 does not match SHA256SUMS"):
        verify_bundle(bundle)


def test_changed_sums_break_the_signature(bundle: Path) -> None:
    """Rewriting SHA256SUMS to cover a changed file is what the signature is for."""
    members = _members(bundle)
    members["certification.json"] = b'{"verdict": "CERTIFIED", "mac": "forged"}'
    members[SUMS] = sums_covering(members[SUMS], "certification.json",
                                  members["certification.json"])
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match="signature does not match"):
        verify_bundle(bundle)


def test_a_changed_signature_is_invalid(bundle: Path) -> None:
    members = _members(bundle)
    lines = members[SIGNATURE].decode().splitlines()
    body = bytearray(base64.b64decode("".join(lines[1:-1])))
    body[-1] ^= 0xFF  # the last byte of the ed25519 signature
    text = base64.b64encode(bytes(body)).decode()
    members[SIGNATURE] = "\n".join([lines[0], text, lines[-1]]).encode()
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match="signature does not match"):
        verify_bundle(bundle)


@pytest.mark.parametrize("namespace", ["git", "file"])
def test_a_signature_for_another_namespace_is_invalid(bundle: Path, key: Ed25519PrivateKey,
                                                      namespace: str) -> None:
    members = _members(bundle)
    members[SIGNATURE] = sign(members[SUMS], key, namespace).encode()
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match=f"namespace '{namespace}'"):
        verify_bundle(bundle)


@pytest.mark.parametrize("name", [SIGNER, ALLOWED_SIGNERS])
def test_signer_files_must_name_the_signing_key(bundle: Path, key: Ed25519PrivateKey,
                                                name: str) -> None:
    """A bundle re-signed consistently but whose signer.pub/allowed_signers name someone
    else (to fool a reader who only looks at those) is invalid."""
    members = _members(bundle)
    other = openssh_public(Ed25519PrivateKey.generate().public_key())
    members[name] = (f'flexlab-signer namespaces="flexlab-bundle" {other}\n'
                     if name == ALLOWED_SIGNERS else f"{other} flexlab-signer\n").encode()
    members[SUMS] = sums_covering(members[SUMS], name, members[name])
    members[SIGNATURE] = sign(members[SUMS], key).encode()
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match=f"{name} names another key"):
        verify_bundle(bundle)


def test_a_format_1_bundle_is_refused_with_the_reason(bundle: Path) -> None:
    members = _members(bundle)
    for name in (SUMS, SIGNATURE, SIGNER, ALLOWED_SIGNERS):
        del members[name]
    members["signature.json"] = b'{"algorithm": "ed25519"}'
    _rewrite(bundle, members)
    with pytest.raises(BundleError, match="format 1"):
        verify_bundle(bundle)


def test_a_re_signed_bundle_fails_only_against_the_expected_key(
        tmp_path: Path, key: Ed25519PrivateKey, capsys: pytest.CaptureFixture[str]) -> None:
    forger = Ed25519PrivateKey.generate()
    forged = tmp_path / "forged.tar.gz"
    write_bundle(forged, {**FILES, "certification.json": b'{"verdict": "CERTIFIED"}'}, forger)
    assert verify_bundle(forged).fingerprint == fingerprint(forger.public_key())
    assert verify_main([str(forged), "--pubkey", str(_pubkey_file(tmp_path, key))]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "not by the given --pubkey" in out


def test_missing_and_extra_files_are_invalid(bundle: Path) -> None:
    members = _members(bundle)
    without = dict(members)
    del without["console.log"]
    _rewrite(bundle, without)
    with pytest.raises(BundleError, match=r"missing file.*console.log"):
        verify_bundle(bundle)
    _rewrite(bundle, {**members, "extra.txt": b"hello"})
    with pytest.raises(BundleError, match=r"extra file.*extra.txt"):
        verify_bundle(bundle)


@pytest.mark.parametrize("bad", [
    ("../evil", tarfile.REGTYPE), ("/etc/passwd", tarfile.REGTYPE),
    ("sub/dir.txt", tarfile.REGTYPE), ("link", tarfile.SYMTYPE), ("hard", tarfile.LNKTYPE),
    ("adir", tarfile.DIRTYPE), ("fifo", tarfile.FIFOTYPE),
])
def test_unsafe_members_are_rejected(bundle: Path, bad: tuple[str, bytes]) -> None:
    name, kind = bad
    info = tarfile.TarInfo(name)
    info.type = kind
    if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = "/etc/shadow"
    info.size = 1 if kind == tarfile.REGTYPE else 0
    _rewrite(bundle, _members(bundle), [info])
    with pytest.raises(BundleError, match=r"unsafe member|link|directory|regular file"):
        verify_bundle(bundle)


def test_duplicate_members_are_rejected(bundle: Path) -> None:
    members = _members(bundle)
    info = tarfile.TarInfo("boot.pcap")
    info.size = 1
    _rewrite(bundle, members, [info])
    with pytest.raises(BundleError, match="twice"):
        verify_bundle(bundle)


def test_garbage_is_invalid_not_a_crash(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + os.urandom(200))
    assert verify_main([str(junk)]) == 1
    assert capsys.readouterr().out.startswith("INVALID")
    assert verify_main([str(tmp_path / "absent.tar.gz")]) == 1


def test_bundle_refuses_unknown_or_missing_contents(tmp_path: Path,
                                                    key: Ed25519PrivateKey) -> None:
    with pytest.raises(CertifyError, match="missing"):
        write_bundle(tmp_path / "x.tar.gz", {"boot.pcap": b""}, key)
    with pytest.raises(CertifyError, match="unknown"):
        write_bundle(tmp_path / "x.tar.gz", {**FILES, "notes.txt": b""}, key)


def test_default_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "flexlab" / "certify-ed25519.pem"
    key, where, created = default_key(path)
    assert created and where == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, _, created_again = default_key(path)
    assert not created_again
    assert fingerprint(again.public_key()) == fingerprint(key.public_key())
    # the private key file also works as --pubkey, as does base64 of the raw key
    assert fingerprint(load_public_key(path)) == fingerprint(key.public_key())
    raw = tmp_path / "raw.b64"
    raw.write_text(base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode())
    assert fingerprint(load_public_key(raw)) == fingerprint(key.public_key())
    # and so do OpenSSH forms: a .pub line, an allowed_signers line
    for name, line in (("k.pub", openssh_public(key.public_key(), "me@example")),
                       ("allowed", 'me namespaces="flexlab-bundle" '
                                   + openssh_public(key.public_key()))):
        (tmp_path / name).write_text(line + "\n")
        assert fingerprint(load_public_key(tmp_path / name)) == fingerprint(key.public_key())
