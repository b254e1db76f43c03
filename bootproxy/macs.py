"""The Boot Proxy's one MAC helper.

The proxy ships in its own container without the harness, so it cannot use
``harness.macs``; every MAC it reads (the Control Plane's assignments, the MAC in an
iPXE script URL) goes through :func:`parse_mac` here, and nowhere else in ``bootproxy/``.
The canonical form is the Control Plane API's: lower case, colon separated.
"""

from __future__ import annotations

import re

__all__ = ["parse_mac"]

# six octets, each pair optionally followed by ':' or '-' (iPXE may send ${mac:hexraw})
_MAC = re.compile(r"^([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?"
                  r"([0-9a-f]{2})[:-]?([0-9a-f]{2})[:-]?([0-9a-f]{2})$")


def parse_mac(text: str) -> str | None:
    """Lower-case colon form of a MAC written with ``:``, ``-`` or no separators; else None."""
    match = _MAC.match(text.strip().lower())
    return ":".join(match.groups()) if match else None
