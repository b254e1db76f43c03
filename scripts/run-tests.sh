#!/usr/bin/env bash
# The whole suite exactly as CI runs it: lint, types, then every tier.
# pytest's exit status 5 ("no tests collected") is a failure here, said plainly.
#
# pytest runs on pytest-xdist workers (labs are isolated by id, so tests run side by side):
#   FLEXLAB_TEST_WORKERS=N   N workers (default: 3 per core — a lab test uses a fraction
#                            of a core, the rest is waiting on timers and daemons); 0 runs
#                            serially, in one process
#   FLEXLAB_TEST_SHARD=i/n   run only shard i of n (pytest-split, by the committed
#                            .test_durations), for CI spread over several machines
#   FLEXLAB_LINT=0           leave out ruff and mypy (CI shards after the first do)
# Extra arguments go to pytest (e.g. `scripts/run-tests.sh --tier unit`).
set -uo pipefail
cd "$(dirname "$0")/.."
# CI=true (set by .ci/run) turns a missing test requirement from a skip into a failure:
# --flexlab-strict (the CI variable alone changes nothing in a pytest run; docs/PYTEST.md).
export CI="${CI:-}"
# Bytecode caches on: with PYTHONDONTWRITEBYTECODE set (some CI images set it), every
# worker and every Python process a test starts compiled the project from source again and
# pytest re-rewrote ~650 modules' asserts per worker (collection 8.4 s of CPU instead of 3.6).
unset PYTHONDONTWRITEBYTECODE
strict=()
case "${CI,,}" in 1|true|yes) strict=(--flexlab-strict) ;; esac
mkdir -p reports
status=0
workers="${FLEXLAB_TEST_WORKERS:-$(( $(nproc) * 3 ))}"
xdist=(-n "$workers")
[ "$workers" != 0 ] && xdist+=(--dist loadgroup)
shard=()
if [ -n "${FLEXLAB_TEST_SHARD:-}" ]; then
  shard=(--splits "${FLEXLAB_TEST_SHARD#*/}" --group "${FLEXLAB_TEST_SHARD%/*}"
         --durations-path .test_durations --splitting-algorithm least_duration)
fi
# Lint and types (a minute of CPU, mostly mypy) run beside the tests, which mostly wait;
# their output is shown after the tests, and a finding fails the run as before.
lint_log=$(mktemp)
if [ "${FLEXLAB_LINT:-1}" != 0 ]; then
  ( rc=0
    echo "== ruff"; .venv/bin/ruff check . || rc=1
    echo "== mypy"; .venv/bin/mypy || rc=1
    exit $rc ) >"$lint_log" 2>&1 &
else
  echo "== ruff, mypy: left out (FLEXLAB_LINT=0)" >"$lint_log"; true &
fi
lint_pid=$!
started=$(date +%s)
echo "== pytest (all tiers, ${workers} workers${FLEXLAB_TEST_SHARD:+, shard $FLEXLAB_TEST_SHARD})"
.venv/bin/pytest -p no:cacheprovider --timeout=900 "${strict[@]}" "${xdist[@]}" "${shard[@]}" "$@"
rc=$?
if [ $rc -eq 5 ]; then
  echo "run-tests: pytest collected no tests — that is a failure, not a pass" >&2
  rc=1
fi
[ $rc -ne 0 ] && status=$rc
wait "$lint_pid" || status=1
cat "$lint_log"; rm -f "$lint_log"
echo "run-tests: pytest wall $(( $(date +%s) - started )) s"
# Labs this run made and left behind: created after it started, owner gone. (Labs of
# other runs on the same host, and live ones, are not ours to judge or remove.)
leftover=$(.venv/bin/python - "$started" <<'PY'
import sys
from harness.lab.registry import Registry, owner_alive
reg = Registry()
since = float(sys.argv[1])
left = [i for i in reg.lab_ids()
        if (r := reg.load(i)) is not None and r.created >= since and not owner_alive(r)]
print(" ".join(left))
PY
)
if [ -n "$leftover" ]; then
  echo "run-tests: labs left behind after the run: $leftover (cleaning them now)" >&2
  for id in $leftover; do .venv/bin/flexlab clean --lab "$id" || true; done
  status=1
fi
exit $status
