"""``python -m harness.certify ...`` runs ``flexlab certify`` (``verify`` as first word checks a
bundle), until the lead mounts both under ``flexlab``."""

from __future__ import annotations

import sys

from harness.certify import cli, cli_verify


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``verify BUNDLE`` to harness.certify.cli_verify, anything else to certify."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "verify":
        return cli_verify.main(args[1:])
    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main())
