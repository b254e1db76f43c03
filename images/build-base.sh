#!/bin/sh
# Build the Debian bookworm base image flexlab's containers start FROM.
# There is no registry on a lab host, so the base comes from mmdebstrap and is
# imported into the local Docker store.  The build is skipped when an image with
# this tag already carries a label with the same package-list hash, so
# `make images` is cheap after the first run.
set -eu

TAG="${FLEXLAB_BASE_TAG:-flexlab/debian-base:bookworm}"
SUITE="${FLEXLAB_BASE_SUITE:-bookworm}"
MIRROR="${FLEXLAB_BASE_MIRROR:-http://deb.debian.org/debian}"
# Extra packages baked into the base (comma separated, mmdebstrap --include).
PACKAGES="${FLEXLAB_BASE_PACKAGES:-ca-certificates}"

hash=$(printf '%s\n%s\n%s\n' "$SUITE" "$MIRROR" "$PACKAGES" | sha256sum | cut -c1-16)

have=$(docker image inspect --format '{{ index .Config.Labels "flexlab.base.hash" }}' "$TAG" 2>/dev/null || true)
if [ "$have" = "$hash" ]; then
    echo "build-base: $TAG is current (hash $hash), skipping"
    exit 0
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
    echo "build-base: mmdebstrap not found; run scripts/setup-host.sh (apt-get install mmdebstrap)" >&2
    exit 1
fi

echo "build-base: building $TAG (suite $SUITE, packages '$PACKAGES', hash $hash)"
mmdebstrap --variant=minbase --include="$PACKAGES" "$SUITE" - "$MIRROR" \
    | docker import \
        --change "LABEL flexlab.base.hash=$hash" \
        --change "LABEL flexlab.base.packages=$PACKAGES" \
        --change 'CMD ["/bin/bash"]' \
        - "$TAG"
echo "build-base: built $TAG"
