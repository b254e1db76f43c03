"""Lab components: each has the same life — start, wait_ready, stop, logs, artifacts."""

from harness.components.base import Component

__all__ = ["Component"]
