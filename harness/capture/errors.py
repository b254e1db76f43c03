"""Errors raised while reading packet captures."""


class CaptureError(Exception):
    """A capture file cannot be used: missing, truncated, corrupt, or without DHCP.

    The message names the file and says what to do next; the CLI prints it as one
    line instead of a traceback.
    """
