"""The one exception hierarchy of the benchmark package."""

from __future__ import annotations

from harness.errors import FlexlabError


class BenchError(FlexlabError):
    """A benchmark could not run or produced no usable figure; the message says what to fix."""


class ParseError(BenchError):
    """A load generator's output was not in the expected shape."""
