"""The Boot Proxy's exception hierarchy: every error it raises on purpose derives from one base."""

from __future__ import annotations


class BootProxyError(Exception):
    """Base of every error the Boot Proxy raises on purpose, so callers can catch one type."""


class CodecError(BootProxyError):
    """A DHCP packet or option could not be parsed or encoded.

    Raised for truncated, oversized or malformed packets; the message names the
    field and offset so a capture can be checked by hand.
    """


class ConfigError(BootProxyError):
    """The proxy's configuration is invalid; the message names the setting to fix."""


class AssignmentError(BootProxyError):
    """The Control Plane's assignment list (or the disk cache of it) is unusable."""


class ListenerError(BootProxyError):
    """A socket could not be opened (missing interface, port in use, no privilege)."""
