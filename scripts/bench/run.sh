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

# Vectron runs twice: with internal mutual TLS (the default) and with
# plaintext internal traffic (--insecure-internal), so the cost of TLS on
# every gateway → worker hop shows side by side. BENCH_INTERNAL=mtls or
# =plaintext runs one of them.
modes="${BENCH_INTERNAL:-mtls plaintext}"
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
dev_pid=""
data=""
cleanup() {
  [ -n "$dev_pid" ] && { kill "$dev_pid" 2>/dev/null || true; wait "$dev_pid" 2>/dev/null || true; }
  [ -n "$data" ] && rm -rf "$data"
  dev_pid=""; data=""
}
trap cleanup EXIT

first=1
for mode in $modes; do
  data="$(mktemp -d)"
  log="$data/dev.log"
  http="$(free_port)"; grpc="$(free_port)"
  internal=()
  [ "$mode" = plaintext ] && internal=(--insecure-internal)
  # The benchmark measures the engine, not the per-credential rate limit.
  "$vectron" "${internal[@]}" dev --data-dir "$data" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" \
    --rate-limit 1000000000 >"$log" 2>&1 &
  dev_pid=$!
  ready=""
  for _ in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:$http/readyz" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
  done
  [ -n "$ready" ] || { echo "vectron dev did not become ready:" >&2; cat "$log" >&2; exit 1; }
  pd="127.0.0.1:$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pd"])' "$data/dev-ports.json")"

  echo "== vectron bench (internal traffic: $mode)"
  # The worker target talks to the worker's internal port: under mutual
  # TLS with the admin certificate `vectron dev` made in its data dir.
  client=()
  if [ "$mode" = mtls ]; then
    tls="$data/tls"
    client=(--internal-ca "$tls/ca.pem" --internal-cert "$tls/admin.pem" --internal-key "$tls/admin.key")
  fi
  targets=(--target "worker=$pd" --target "grpc=http://127.0.0.1:$grpc" --target "rest=http://127.0.0.1:$http")
  # The in-process baseline once, in the first run.
  [ -n "$first" ] && targets=(--target hnsw-rs --target index "${targets[@]}")
  "$vectron" "${client[@]}" bench --dataset "$dataset" "${targets[@]}" \
    --json "$out/vectron-$mode.json" "$@"
  cleanup
  first=""
done
