"""A sample certification bundle's files, and the forger's first move on its checksum list,
shared by the tests of flexlab's own verifier (test_bundle.py) and of ssh-keygen's view of
the same bundles (test_bundle_sshkeygen.py)."""

from __future__ import annotations

import hashlib
import json

from harness.certify.bundle import parse_sums, sums_text

#: every file a bundle must hold, with small but distinct contents (boot.pcap spans
#: several tar blocks, so a one-bit change is not in the first block).
FILES: dict[str, bytes] = {
    "certification.json": json.dumps({"verdict": "CERTIFIED", "mac": "52:54:00:00:00:01"}).encode(),
    "firmware-options.json": b'{"firmware": "bios"}',
    "rules.json": b'{"ok": true}',
    "timings.json": b'{"phases": {}}',
    "facts.json": b'{"facts": {"cpu_cores": 2}}',
    "boot.pcap": bytes(range(256)) * 40,
    "console.log": b"iPXE 1.21\nLinux version 6.1\n",
}


def sums_covering(sums: bytes, name: str, data: bytes) -> bytes:
    """SHA256SUMS rewritten to list ``data`` as ``name``'s contents: what a forger does
    after changing a signed file, so that only the signature over the list can catch it."""
    listed = parse_sums(sums)
    listed[name] = hashlib.sha256(data).hexdigest()
    return sums_text(listed)
