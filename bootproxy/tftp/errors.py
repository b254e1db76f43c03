"""Exceptions raised by the TFTP server, its packet codec and its client."""

from __future__ import annotations


class TftpError(Exception):
    """Base of every error the TFTP package raises; catch this to handle them all."""


class PacketError(TftpError):
    """A datagram is not a well-formed TFTP packet.

    The server answers these with ERROR 4 (illegal operation) or drops them;
    a sender seeing this should check it speaks RFC 1350 framing.
    """


class PathError(TftpError):
    """A requested file name is refused before any file is opened.

    ``code`` is the TFTP error code the server sends back: 1 (file not found)
    or 2 (access violation).
    """

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class TransferError(TftpError):
    """A transfer (client side) ended without the whole file.

    ``code`` is the TFTP error code the peer sent, or None for a timeout.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
