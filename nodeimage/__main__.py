"""Command line: ``python -m nodeimage build [--kernel flexlab|debian] [--kernel-package P]
[--force] [--out DIR]``
and ``python -m nodeimage prune [--keep N]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nodeimage.build import DEFAULT_CACHE, DEFAULT_OUT, KERNEL_ENV, KERNELS, build_image, prune
from nodeimage.errors import NodeImageError


def main(argv: list[str] | None = None) -> int:
    """Build the node image and print its directory (the last line of stdout)."""
    parser = argparse.ArgumentParser(prog="python -m nodeimage",
                                     description="Build the flexlab node image.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) build/nodeimage/<id>/")
    build.add_argument("--out", type=Path, default=DEFAULT_OUT)
    build.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    build.add_argument("--kernel", choices=KERNELS, default=None,
                       help="flexlab: built here from Debian's linux-source with the lab's "
                            "drivers built in (the default); debian: Debian's packaged "
                            f"kernel and its modules (default from ${KERNEL_ENV})")
    build.add_argument("--kernel-package", default=None,
                       help="with --kernel debian: pin e.g. linux-image-6.1.0-56-amd64 "
                            "(default: what linux-image-amd64 depends on)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    prune_cmd = sub.add_parser("prune", help="delete all but the newest images")
    prune_cmd.add_argument("--out", type=Path, default=DEFAULT_OUT)
    prune_cmd.add_argument("--keep", type=int, default=2)
    args = parser.parse_args(argv)
    try:
        if args.command == "prune":
            for gone in prune(args.out, args.keep):
                print(f"nodeimage: removed {gone}", file=sys.stderr)
            return 0
        result = build_image(args.out, args.cache, args.kernel_package, args.force,
                             kernel_kind=args.kernel)
    except NodeImageError as exc:
        print(f"nodeimage: error: {exc}", file=sys.stderr)
        return 1
    state = "cached" if result.cached else "built"
    print(f"nodeimage: {state} {result.image_id}", file=sys.stderr)
    print(result.directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
