#!/usr/bin/env bash
# One benchmark run, every target side by side on the same dataset:
# hnswlib (pip) in-process, raw hnsw_rs in-process, and Vectron (`vectron dev`,
# release build) over REST, over gRPC, and worker-direct.
# Usage: scripts/bench/run.sh [DATASET_DIR] [extra `vectron bench` flags]
# Run on an idle machine; figures go to stdout and target/bench/*.json.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dataset="${1:-$HOME/.cache/vectron/bench-data/minilm-100000}"
shift || true
[ -f "$dataset/meta.json" ] || { echo "no dataset at $dataset: run scripts/bench/dataset.sh first" >&2; exit 1; }
. "$here/env.sh"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/bench"
mkdir -p "$out"
(cd "$root" && cargo build --release -p vectron)
vectron="$target_dir/release/vectron"

echo "== hnswlib"
"$PY" "$here/hnswlib_baseline.py" "$dataset" --json "$out/hnswlib.json"

data="$(mktemp -d)"
log="$data/dev.log"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http="$(free_port)"; grpc="$(free_port)"
# The benchmark measures the engine, not the per-credential rate limit.
"$vectron" dev --data-dir "$data" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" \
  --rate-limit 1000000000 >"$log" 2>&1 &
dev_pid=$!
cleanup() { kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
ready=""
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:$http/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "vectron dev did not become ready:" >&2; cat "$log" >&2; exit 1; }
pd="127.0.0.1:$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pd"])' "$data/dev-ports.json")"

echo "== vectron bench"
# The worker target talks to the worker's internal port: with the admin
# certificate `vectron dev` made in its data dir.
tls="$data/tls"
"$vectron" bench --internal-ca "$tls/ca.pem" --internal-cert "$tls/admin.pem" --internal-key "$tls/admin.key" \
  --dataset "$dataset" \
  --target hnsw-rs --target "worker=$pd" --target "grpc=http://127.0.0.1:$grpc" --target "rest=http://127.0.0.1:$http" \
  --json "$out/vectron.json" "$@"
