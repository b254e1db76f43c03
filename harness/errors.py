"""The harness's exception hierarchy: every error a user can meet says what to do next."""

from __future__ import annotations


class FlexlabError(Exception):
    """Base of every error the harness raises on purpose."""


class TopologyError(FlexlabError):
    """A declared topology is inconsistent; raised before anything is built."""


class LabError(FlexlabError):
    """Building, running or tearing down a lab failed."""


class DependencyError(FlexlabError):
    """A host program or privilege the lab needs is missing.

    The message is one line naming the Debian package (or privilege) to get.
    """


class ComponentError(FlexlabError):
    """A lab component (dnsmasq, tcpdump, a proxy) failed to start or stopped early."""


class WaitTimeout(FlexlabError):
    """A readiness wait ran out of time; the message carries the evidence (log tail)."""
