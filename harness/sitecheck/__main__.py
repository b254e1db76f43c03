"""``python -m harness.sitecheck`` = ``flexlab site-check`` (same flags, same exit status)."""

from __future__ import annotations

import sys

from harness.sitecheck.cli import main

if __name__ == "__main__":
    sys.exit(main())
