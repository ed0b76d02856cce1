#!/usr/bin/env bash
# Runs `vectron dev` (PD, a worker, auth and gateway in one process on
# 127.0.0.1:7333/7334), installing build prerequisites first if missing.
# Extra arguments go to `vectron dev`, e.g. ./scripts/dev.sh --auth
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release -p vectron -- dev "$@"
