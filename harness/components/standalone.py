"""What the `python -m` entry of a small in-lab server does once it is listening."""

from __future__ import annotations

from collections.abc import Callable


def serve_until_interrupted(serve: Callable[[], object], close: Callable[[], object]) -> int:
    """Run the blocking ``serve`` until it returns or an interrupt stops it, always
    ``close`` after, and give exit status 0: a lab helper stopped on purpose ends quietly,
    with no traceback in the log a failed test shows."""
    try:
        serve()
    except KeyboardInterrupt:
        pass
    finally:
        close()
    return 0
