"""A third party checks a flexlab bundle with OpenSSH and coreutils alone.

`ssh-keygen -Y verify` accepts the signature flexlab wrote and rejects it once anything
signed changed; `sha256sum -c` checks the files; the fingerprint flexlab prints is the one
`ssh-keygen -l` prints; and flexlab verifies a signature `ssh-keygen -Y sign` made.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sample_bundle import FILES, sums_covering

from harness.certify.bundle import (
    ALLOWED_SIGNERS,
    PRINCIPAL,
    SIGNATURE,
    SIGNER,
    SUMS,
    parse_sums,
    write_bundle,
)
from harness.certify.errors import BundleError
from harness.certify.keys import fingerprint, load_private_key, openssh_public
from harness.certify.sshsig import NAMESPACE
from harness.certify.verify import main as verify_main
from harness.certify.verify import verify_bundle

SSH_KEYGEN = shutil.which("ssh-keygen")
pytestmark = [
    pytest.mark.unit,
    pytest.mark.needs_binary("ssh-keygen",
                             how="apt-get install openssh-client (scripts/setup-host.sh)"),
]


def _run(argv: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, input=stdin.decode(), capture_output=True, text=True,
                          timeout=30, check=False)


def _unpack(bundle: Path, into: Path) -> Path:
    into.mkdir()
    with tarfile.open(bundle, "r:gz") as tar:
        tar.extractall(into, filter="data")
    return into


def _ssh_verify(where: Path, allowed: str = ALLOWED_SIGNERS) -> subprocess.CompletedProcess[str]:
    """What docs/CERTIFY.md tells a third party to run."""
    assert SSH_KEYGEN is not None
    return _run([SSH_KEYGEN, "-Y", "verify", "-f", allowed, "-I", PRINCIPAL, "-n", NAMESPACE,
                 "-s", SIGNATURE], where, (where / SUMS).read_bytes())


def _ssh_fingerprint(pub: Path) -> str:
    """The fingerprint field of `ssh-keygen -l -f` ("256 SHA256:... comment (ED25519)")."""
    assert SSH_KEYGEN is not None
    out = _run([SSH_KEYGEN, "-l", "-f", str(pub)], pub.parent)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[1]


@pytest.fixture
def unpacked(bundle: Path) -> Path:
    """The sample bundle unpacked beside it, as a third party would."""
    return _unpack(bundle, bundle.parent / "b")


def test_ssh_keygen_and_sha256sum_accept_a_flexlab_bundle(unpacked: Path,
                                                          key: Ed25519PrivateKey) -> None:
    verified = _ssh_verify(unpacked)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"Good \"{NAMESPACE}\" signature for {PRINCIPAL}" in verified.stdout + verified.stderr
    assert fingerprint(key.public_key()) in verified.stdout + verified.stderr
    sums = _run(["sha256sum", "-c", SUMS], unpacked)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert sums.stdout.count(": OK") == len(parse_sums((unpacked / SUMS).read_bytes()))


def test_ssh_keygen_rejects_a_tampered_bundle(unpacked: Path) -> None:
    # a changed file: sha256sum -c catches it ...
    forged = b'{"verdict": "CERTIFIED", "mac": "52:54:00:00:00:99"}'
    (unpacked / "certification.json").write_bytes(forged)
    assert _run(["sha256sum", "-c", SUMS], unpacked).returncode != 0
    # ... and a list rewritten to cover it fails the signature
    (unpacked / SUMS).write_bytes(sums_covering((unpacked / SUMS).read_bytes(),
                                                "certification.json", forged))
    assert _run(["sha256sum", "-c", SUMS], unpacked).returncode == 0
    rejected = _ssh_verify(unpacked)
    assert rejected.returncode != 0, rejected.stdout
    assert "Good" not in rejected.stdout + rejected.stderr


def test_ssh_keygen_rejects_another_signer(unpacked: Path) -> None:
    """A verifier's own allowed_signers (the vendor's published key) is what pins the signer."""
    other = openssh_public(Ed25519PrivateKey.generate().public_key())
    (unpacked / "mine").write_text(f'{PRINCIPAL} namespaces="{NAMESPACE}" {other}\n')
    rejected = _ssh_verify(unpacked, "mine")
    assert rejected.returncode != 0, rejected.stdout


def test_printed_fingerprint_is_ssh_keygens(bundle: Path, unpacked: Path,
                                            key: Ed25519PrivateKey,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    shown = _ssh_fingerprint(unpacked / SIGNER)
    assert shown == fingerprint(key.public_key())
    assert verify_main([str(bundle)]) == 0
    signer_line = next(ln for ln in capsys.readouterr().out.splitlines() if "signer" in ln)
    assert signer_line.split()[-1] == shown


def test_an_ssh_keygen_key_signs_and_an_ssh_keygen_signature_verifies(tmp_path: Path) -> None:
    """--key may be an OpenSSH key; a signature made by `ssh-keygen -Y sign` over the
    same SHA256SUMS is accepted by flexlab verify (our reader reads the real tool's output),
    and a wrong namespace from the same tool is refused."""
    assert SSH_KEYGEN is not None
    made = _run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "vendor", "-f", "vendor"],
                tmp_path)
    assert made.returncode == 0, made.stderr
    key = load_private_key(tmp_path / "vendor")
    assert fingerprint(key.public_key()) == _ssh_fingerprint(tmp_path / "vendor.pub")
    bundle = tmp_path / "b.tar.gz"
    write_bundle(bundle, FILES, key)
    where = _unpack(bundle, tmp_path / "b")
    for namespace, valid in ((NAMESPACE, True), ("git", False)):
        (where / SIGNATURE).unlink()
        signed = _run([SSH_KEYGEN, "-Y", "sign", "-f", str(tmp_path / "vendor"), "-n", namespace,
                       SUMS], where)
        assert signed.returncode == 0, signed.stderr
        repacked = tmp_path / f"ssh-{namespace}.tar.gz"
        with tarfile.open(repacked, "w:gz") as tar:
            for member in sorted(where.iterdir()):
                tar.add(member, arcname=member.name)
        if valid:
            assert verify_bundle(repacked).fingerprint == fingerprint(key.public_key())
        else:
            with pytest.raises(BundleError, match="namespace 'git'"):
                verify_bundle(repacked)
