#!/usr/bin/env bash
# The short chaos run CI does: five fault mixes of eight cycles each against
# a real 3 PD + 3 worker cluster on loopback, each checked for
# linearizability (Porcupine), lost acknowledged writes, convergence and
# search; then the suite's self-test, a run with a planted stale-read bug,
# which must be caught. Needs the vectron binary built with the failpoints
# feature (scripts/test.sh builds it so; the crash mix arms crash points) and go.
#
#   tests/chaos/run.sh [path/to/vectron]
#
# Environment: CHAOS_CYCLES (default 8), CHAOS_SEED (default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
vectron="${1:-$target/debug/vectron}"
[ -x "$vectron" ] || { echo "chaos: no vectron binary at $vectron (run cargo build first)" >&2; exit 1; }
command -v go >/dev/null || { echo "chaos: go is needed for the Porcupine checker" >&2; exit 1; }
cycles="${CHAOS_CYCLES:-8}"
seed="${CHAOS_SEED:-1}"
start=$(date +%s)

(cd tests/chaos/checker && go vet ./... && go test ./...)

for mix in kill pause partition mixed crash; do
  echo "== chaos: mix $mix, $cycles cycles, seed $seed ($(( $(date +%s) - start ))s)"
  "$vectron" chaos --mix "$mix" --cycles "$cycles" --seed "$seed" \
    --checker-dir tests/chaos/checker
done

echo "== chaos self-test: a planted stale-read bug must be caught ($(( $(date +%s) - start ))s)"
out=$(mktemp)
selftest=$(mktemp -d)
trap 'rm -rf "$selftest" "$out"' EXIT
if "$vectron" chaos --mix pause --cycles 3 --seed "$seed" --plant-stale-reads \
    --data-dir "$selftest/run" --checker-dir tests/chaos/checker >"$out" 2>&1; then
  cat "$out"
  echo "chaos: the planted stale-read bug was NOT caught" >&2
  exit 1
fi
if ! grep -q "NOT linearizable" "$out"; then
  cat "$out"
  echo "chaos: the self-test failed, but not on linearizability" >&2
  exit 1
fi
grep -E "linearizability violations|NOT linearizable" "$out" | head -3
echo "== chaos: done ($(( $(date +%s) - start ))s)"
