"""Recognise the start of an HTTP/1.x request or response in a TCP segment.

Only the first line and the headers present in the same segment are read:
enough to see which files a client fetched, with which method and range, and
what status the server gave. Bodies are not reassembled.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")


@dataclass(frozen=True)
class HttpFields:
    """First line and headers of one HTTP message head."""

    kind: str
    method: str | None = None
    path: str | None = None
    version: str | None = None
    status: int | None = None
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """First header named ``name`` (case-insensitive) or None."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None


def parse_http_start(data: bytes) -> HttpFields | None:
    """Decode ``data`` when it starts an HTTP message, else return None."""
    if not data:
        return None
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace")
    lines = head.split("\r\n")
    first = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    parts = first.split(" ")
    if first.startswith("HTTP/1.") and len(parts) >= 2 and parts[1].isdigit():
        return HttpFields(
            kind="response",
            version=parts[0],
            status=int(parts[1]),
            reason=" ".join(parts[2:]),
            headers=tuple(headers),
        )
    if len(parts) == 3 and parts[0] in METHODS and parts[2].startswith("HTTP/"):
        return HttpFields(
            kind="request",
            method=parts[0],
            path=parts[1],
            version=parts[2],
            headers=tuple(headers),
        )
    return None
