#!/usr/bin/env bash
# Runs Vectron's whole test suite: installs build prerequisites if missing,
# builds and runs every test of every crate in the workspace, then (when no
# cargo arguments narrow the run) the short chaos run (tests/chaos/run.sh:
# five fault mixes, partitions and crash points among them, checked for linearizability, and the self-test with a
# planted bug), the offline Helm chart checks and the kind end-to-end suite,
# which skips cleanly where kind, docker or helm are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The failpoints feature compiles the chaos suite's crash points in (they
# stay unarmed unless FAILPOINTS names them); release builds never have it.
cargo test --workspace --all-targets --features vectron/failpoints "$@"
if [ "$#" -eq 0 ]; then
  ./tests/chaos/run.sh "${CARGO_TARGET_DIR:-target}/debug/vectron"
  ./scripts/chart-test.sh
  ./e2e/run.sh
fi
