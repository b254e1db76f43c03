#!/bin/sh
# Build the node image; prints build/nodeimage/<id> on success. Used by `make nodeimage`.
set -eu
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m nodeimage build "$@"
