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
# Waits (at most 2 minutes) for a gateway on loopback PORT to be ready;
# shows LOG and stops the run when it is not.
wait_ready() {
  local port="$1" log="$2" what="$3"
  for _ in $(seq 1 240); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$what did not become ready:" >&2; cat "$log" >&2; exit 1
}

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
  wait_ready "$http" "$log" "vectron dev"
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

# Ingest at replication factor 3 on a real multi-process cluster: a
# `vectron playground` (3 PD nodes, 3 workers, gateway, each its own
# process) over REST. BENCH_PLAYGROUND=0 skips it.
if [ "${BENCH_PLAYGROUND:-1}" != 0 ]; then
  data="$(mktemp -d)"
  base=$(( 20000 + RANDOM % 20000 ))
  internal=()
  [ "${BENCH_INTERNAL:-mtls}" = plaintext ] && internal=(--insecure-internal)
  VECTRON_RATE_LIMIT=0 VECTRON_ADDRESS_RATE_LIMIT=0 \
    "$vectron" "${internal[@]}" playground --workers 3 --base-port "$base" --data-dir "$data/cluster" \
    >"$data/playground.log" 2>&1 &
  dev_pid=$!
  wait_ready "$base" "$data/playground.log" "vectron playground"
  echo "== vectron bench: playground, 3 workers, replication factor 3"
  "$vectron" bench --dataset "$dataset" --target "rest=http://127.0.0.1:$base" \
    --replication-factor 3 --ef 64 --threads 1,2 --json "$out/vectron-playground-rf3.json"
  cleanup
fi
