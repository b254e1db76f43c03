"""Packet captures: decoding pcaps into typed DHCP, TFTP and HTTP events."""

from harness.capture.decode import decode_pcap
from harness.capture.dhcp_codec import PxeOptions
from harness.capture.errors import CaptureError
from harness.capture.events import Capture, DhcpEvent, HttpEvent, TftpEvent

__all__ = [
    "Capture",
    "CaptureError",
    "DhcpEvent",
    "HttpEvent",
    "PxeOptions",
    "TftpEvent",
    "decode_pcap",
]
