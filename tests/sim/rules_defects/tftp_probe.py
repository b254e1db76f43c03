"""Send TFTP requests a boot server must refuse, run inside a client namespace.

Usage: python tftp_probe.py SERVER_IP
Each request goes from a fresh port to SERVER_IP:69 and waits up to 2 s for the first
answer; prints one JSON object {case: [opcode, error code or block] or null}. Not a
test by itself: the sim test records the segment and judges the capture.
"""

from __future__ import annotations

import json
import socket
import sys

CASES = {
    "missing": (1, "no-such-file.kpxe", "octet"),
    "dotdot": (1, "../../etc/passwd", "octet"),
    "absolute": (1, "/etc/passwd", "octet"),
    "bad-mode": (1, "present.kpxe", "bogus"),
    "bad-opcode": (9, "present.kpxe", "octet"),
    "write": (2, "upload.bin", "octet"),
    "present": (1, "present.kpxe", "octet"),
}


def request(server: str, opcode: int, name: str, mode: str) -> list[int] | None:
    """One request from a new port; the first answer's opcode and code/block, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2.0)
        s.sendto(opcode.to_bytes(2, "big") + name.encode() + b"\0" + mode.encode() + b"\0",
                 (server, 69))
        try:
            data, _ = s.recvfrom(2048)
        except TimeoutError:
            return None
        return [int.from_bytes(data[:2], "big"), int.from_bytes(data[2:4], "big")]


def main() -> None:
    server = sys.argv[1]
    print(json.dumps({k: request(server, *v) for k, v in CASES.items()}))


if __name__ == "__main__":
    main()
