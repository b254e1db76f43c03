#!/bin/sh
# Build every flexlab image locally: the Debian base (cached by a package-list
# hash, see build-base.sh) and the Boot Proxy image FROM it.
# Usage: images/build.sh            (what `make images` runs)
#        images/build.sh --no-cache  (extra arguments go to `docker build`)
#        FLEXLAB_BOOTPROXY_TAG=flexlab/bootproxy:dev images/build.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BASE_TAG="${FLEXLAB_BASE_TAG:-flexlab/debian-base:bookworm}"
TAG="${FLEXLAB_BOOTPROXY_TAG:-flexlab/bootproxy:latest}"

FLEXLAB_BASE_TAG="$BASE_TAG" "$here/build-base.sh"

# A minimal build context: the bootproxy package and its Dockerfile only, so the
# repository's .venv and reports never get sent to the daemon.
ctx=$(mktemp -d "${TMPDIR:-/tmp}/flexlab-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT INT TERM
mkdir -p "$ctx/bootproxy"
(cd "$repo" && tar --exclude='__pycache__' --exclude='*.pyc' --exclude='Dockerfile' \
    -cf - bootproxy) | tar -C "$ctx" -xf -
cp "$repo/bootproxy/Dockerfile" "$ctx/Dockerfile"

rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
start=$(date +%s)
docker build "$@" --build-arg BASE="$BASE_TAG" \
    --label "flexlab.image=bootproxy" --label "flexlab.revision=$rev" \
    -t "$TAG" "$ctx"
echo "build: $TAG built in $(( $(date +%s) - start )) s (revision $rev)"

# Earlier builds of this image, now untagged, would pile up on every rebuild.
old=$(docker images --filter dangling=true --filter label=flexlab.image=bootproxy -q)
if [ -n "$old" ]; then
    # shellcheck disable=SC2086
    docker rmi $old >/dev/null 2>&1 || true
fi
