"""The certify package's exceptions: one base, and the one verify turns into INVALID."""

from __future__ import annotations

from harness.errors import FlexlabError


class CertifyError(FlexlabError):
    """Certification could not run (no interface address, no key, no tcpdump...).

    The message says what to fix; the CLI prints it and exits 2.
    """


class BundleError(CertifyError):
    """A bundle is unreadable, unsafe, tampered with or signed by the wrong key.

    ``flexlab verify`` prints the message after INVALID.
    """
