"""MAC addresses in the harness: one canonical form, one parser.

The Control Plane's API, the Boot Proxy's assignments, capture decoding and every
report compare MACs as text, so the harness keeps them in one form: lower-case, colon
separated (``52:54:00:ab:cd:ef``). Whatever a user or a file writes — dashes
(``52-54-00-AB-CD-EF``, Windows), dots (``5254.00ab.cdef``, switch MAC tables), upper
case, surrounding blanks — goes through :func:`normalize_mac` once, at the edge.

The Boot Proxy (``bootproxy/``) and the Control Plane (``controlplane/``) ship without
the harness, so each keeps one helper of its own; this module is the harness's only one.
"""

from __future__ import annotations

import re

from harness.errors import FlexlabError

__all__ = ["MacError", "mac_bytes", "mac_text", "normalize_mac", "parse_mac"]

_HEX = "[0-9a-f]"
# six octets joined by one separator (':' or '-'), or three dot-joined groups of four
_SEPARATED = re.compile(rf"^{_HEX}{{2}}([:-]){_HEX}{{2}}(?:\1{_HEX}{{2}}){{4}}$")
_DOTTED = re.compile(rf"^{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}}$")
EXAMPLE = "52:54:00:12:34:56"


class MacError(FlexlabError, ValueError):
    """Text that is not a MAC address; the message names it and shows the form to use.

    A ValueError too, so pydantic validators and callers that catch ValueError keep working.
    """


def parse_mac(text: str) -> str | None:
    """``text`` in canonical form (lower-case, colons), or None when it is not a MAC.

    For comparing a value that may legitimately be anything (a NIC list a node reported);
    input a user gave goes through :func:`normalize_mac`, which says what is wrong.
    """
    value = text.strip().lower()
    if _SEPARATED.match(value):
        return value.replace("-", ":")
    if _DOTTED.match(value):
        digits = value.replace(".", "")
        return ":".join(digits[i:i + 2] for i in range(0, 12, 2))
    return None


def normalize_mac(text: str, what: str = "") -> str:
    """``text`` in canonical form; :class:`MacError` naming it (after ``what``, e.g.
    ``"--serves"``) when it is not a MAC address."""
    mac = parse_mac(text) if isinstance(text, str) else None
    if mac is None:
        prefix = f"{what}: " if what else ""
        raise MacError(f"{prefix}{text!r} is not a MAC address; write it as {EXAMPLE}")
    return mac


def mac_bytes(text: str) -> bytes:
    """The six bytes of a MAC written in any form :func:`normalize_mac` accepts."""
    return bytes.fromhex(normalize_mac(text).replace(":", ""))


def mac_text(raw: bytes) -> str:
    """Hardware address bytes in canonical form (any length: chaddr may hold 16).

    ``bytes.hex`` with a separator, not a join over the bytes: the judge names two MACs
    per captured frame, and the join was an eighth of its time on a storm's captures."""
    return bytes(raw).hex(":")
