#!/usr/bin/env bash
# Offline checks of the Helm chart (no cluster needed): renders it with the
# real Helm SDK and validates every object against the Kubernetes schema in
# strict mode. Installs its Python tools into a cached virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VECTRON_CHART_VENV:-$HOME/.cache/vectron/chart-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import helm_python, kubernetes_validate, yaml" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" pyyaml
fi
"$VENV/bin/python" charts/tests/validate_chart.py
