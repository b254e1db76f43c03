"""Errors raised while reading packet captures."""

from harness.errors import FlexlabError


class CaptureError(FlexlabError):
    """A capture file cannot be used: missing, truncated, corrupt, or without DHCP.

    The message names the file and says what to do next; the CLI prints it as one
    line instead of a traceback.
    """
