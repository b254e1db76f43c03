#!/usr/bin/env bash
# The whole suite exactly as CI runs it: lint, types, then every tier.
# pytest's exit status 5 ("no tests collected") is a failure here, said plainly.
set -uo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-}"
mkdir -p reports
status=0
echo "== ruff"; .venv/bin/ruff check . || status=1
echo "== mypy"; .venv/bin/mypy || status=1
echo "== pytest (all tiers)"
.venv/bin/pytest -p no:cacheprovider --timeout=900 "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run-tests: pytest collected no tests — that is a failure, not a pass" >&2
  rc=1
fi
[ $rc -ne 0 ] && status=$rc
leftover=$(.venv/bin/python -c 'from harness.lab.registry import Registry; print(" ".join(Registry().lab_ids()))' 2>/dev/null)
if [ -n "$leftover" ]; then
  echo "run-tests: labs left behind after the run: $leftover (cleaning them now)" >&2
  .venv/bin/flexlab clean --all --force || true
  status=1
fi
exit $status
