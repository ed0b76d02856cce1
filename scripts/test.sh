#!/usr/bin/env bash
# Runs Vectron's whole test suite: installs build prerequisites if missing,
# then builds and runs every test of every crate in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo test --workspace --all-targets "$@"
