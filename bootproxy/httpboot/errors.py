"""Exceptions raised by the HTTP boot server and its Control Plane adapters."""

from __future__ import annotations


class HttpBootError(Exception):
    """Base of every error the httpboot package raises."""


class BootDataError(HttpBootError):
    """The Control Plane's boot data cannot be turned into a safe iPXE script.

    Fix the machine's boot profile in the Control Plane (artifact names and
    cmdline must be single-line, without control characters).
    """


class ArtifactError(HttpBootError):
    """A kernel/initrd artifact could not be fetched from the Control Plane or cached.

    Check that the artifact exists (``GET /api/v1/artifacts/{name}``), that the
    proxy token may read it, and that the cache directory is writable.
    """


class RequestError(HttpBootError):
    """A client's HTTP request is malformed; the server answers 400 and closes."""


class ControlPlaneUnavailable(HttpBootError):
    """The Control Plane could not be reached (or answered garbage): the client should retry."""
