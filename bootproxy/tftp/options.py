"""TFTP option negotiation: blksize (RFC 2348), timeout and tsize (RFC 2349),
windowsize (RFC 7440).  Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

BLKSIZE_MIN, BLKSIZE_MAX = 8, 65464
TIMEOUT_MIN, TIMEOUT_MAX = 1, 255
WINDOW_MIN, WINDOW_MAX = 1, 65535
DEFAULT_BLKSIZE = 512


@dataclass(frozen=True)
class Limits:
    """Server-side caps applied to what clients ask for.

    ``max_blksize`` defaults to 1468 (a 1500-byte MTU minus IP, UDP and TFTP
    headers) so a DATA packet never fragments on an ordinary LAN.
    """

    max_blksize: int = 1468
    max_windowsize: int = 64
    default_timeout: float = 1.0


@dataclass(frozen=True)
class Negotiated:
    """The outcome of negotiation: the OACK to send (empty means none) and the settings."""

    oack: dict[str, str]
    blksize: int
    windowsize: int
    timeout: float


def _int(value: str) -> int | None:
    try:
        return int(value.strip(), 10)
    except ValueError:
        return None


def negotiate(requested: dict[str, str], file_size: int, limits: Limits) -> Negotiated:
    """Decide the reply to a request's options.

    Only options the client asked for and this server understands go in the
    OACK (TFTP-3); an invalid value makes the option count as not asked for,
    which RFC 2347 allows, so the transfer falls back to the defaults.
    """
    oack: dict[str, str] = {}
    blksize, windowsize, timeout = DEFAULT_BLKSIZE, 1, limits.default_timeout
    for name, value in requested.items():
        number = _int(value)
        if name == "blksize" and number is not None and number >= BLKSIZE_MIN:
            blksize = min(number, BLKSIZE_MAX, limits.max_blksize)
            oack[name] = str(blksize)
        elif name == "timeout" and number is not None and TIMEOUT_MIN <= number <= TIMEOUT_MAX:
            timeout = float(number)
            oack[name] = str(number)
        elif name == "tsize" and number is not None and number >= 0:
            oack[name] = str(file_size)
        elif name == "windowsize" and number is not None and number >= WINDOW_MIN:
            windowsize = min(number, WINDOW_MAX, limits.max_windowsize)
            oack[name] = str(windowsize)
    return Negotiated(oack, blksize, windowsize, timeout)
