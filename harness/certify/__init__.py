"""``flexlab certify``: boot one machine through a local Boot Proxy, judge it, sign the verdict.

Modules: :mod:`~harness.certify.judge` (machine requirements from registered facts),
:mod:`~harness.certify.firmware` (the ROM's DHCP option set), :mod:`~harness.certify.timings`
(per-phase times from the capture), :mod:`~harness.certify.bpf` (the capture filter limited to
the machine's traffic), :mod:`~harness.certify.keys` and :mod:`~harness.certify.bundle` (the signed
tar.gz), :mod:`~harness.certify.verify` (``flexlab verify``) and :mod:`~harness.certify.cli`
(``flexlab certify``).
"""

from harness.certify.errors import BundleError, CertifyError

__all__ = ["BundleError", "CertifyError"]
