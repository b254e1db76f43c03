"""The reports package's errors: each says which input was wrong and what to do."""

from __future__ import annotations

from harness.errors import FlexlabError


class ReportError(FlexlabError):
    """A report could not be written or read (bad run.json, unwritable directory)."""


class RunFileError(ReportError):
    """A run.json is not valid JSON or lacks a field every report needs."""
