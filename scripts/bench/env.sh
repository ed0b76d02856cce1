# Sourced by the benchmark scripts: a cached Python venv with what the
# dataset builder and the hnswlib baseline need.
VENV="${VECTRON_BENCH_VENV:-$HOME/.cache/vectron/bench-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import numpy, tokenizers, safetensors, hnswlib' 2>/dev/null; then
  "$VENV/bin/pip" install --quiet numpy tokenizers safetensors hnswlib
fi
PY="$VENV/bin/python"
