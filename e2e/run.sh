#!/usr/bin/env bash
# End-to-end test on kind: creates a kind cluster, builds the vectron and
# operator images and loads them, installs the chart, applies the examples,
# waits for Running, round-trips data through the gateway, scales workers
# 3 → 5 → 3 while writing and searching and checks that no acknowledged
# point is lost, then deletes the Collection and the cluster.
#
# Where docker, kind, kubectl or helm are missing it says so and exits 77
# (the usual "skipped" code): it reports "skipped", never "passed", and
# scripts/test.sh tells the two apart.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in docker kind kubectl helm curl python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "e2e: skipped: $tool not found (install docker, kind, kubectl and helm to run it)"
    exit 77
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "e2e: skipped: the docker engine is not reachable"
  exit 77
fi

CLUSTER="${VECTRON_E2E_CLUSTER:-vectron-e2e}"
NS=vectron-e2e
TAG=e2e
KEEP="${VECTRON_E2E_KEEP:-}"
PF_PID=""
cleanup() {
  [ -n "$PF_PID" ] && kill "$PF_PID" 2>/dev/null || true
  if [ -z "$KEEP" ]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
step() { echo "== e2e: $*"; }
wait_for() { # description, timeout seconds, command...
  local what=$1 timeout=$2; shift 2
  local deadline=$(( $(date +%s) + timeout ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "e2e: FAILED: $what did not happen within ${timeout}s" >&2
      kubectl -n "$NS" get all,vc,vcol -o wide >&2 || true
      exit 1
    fi
    sleep 3
  done
}

step "kind cluster $CLUSTER"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER" --wait 120s

step "images"
docker build -t "vectron:$TAG" -f Dockerfile .
docker build -t "vectron-operator:$TAG" -f Dockerfile.operator .
kind load docker-image --name "$CLUSTER" "vectron:$TAG" "vectron-operator:$TAG"

step "helm install"
helm upgrade --install vectron-operator charts/vectron-operator -n vectron-system --create-namespace \
  --set image.repository=vectron-operator --set image.tag=$TAG --set image.pullPolicy=Never --wait --timeout 5m
helm test vectron-operator -n vectron-system

step "cluster and collection"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
sed -e "s#ghcr.io/vectron/vectron:0.1.0#vectron:$TAG#" examples/cluster.yaml \
  | kubectl -n "$NS" apply -f -
kubectl -n "$NS" patch vc demo --type merge -p '{"spec":{"imagePullPolicy":"Never"}}'
wait_for "VectronCluster Running" 600 \
  bash -c "[ \"\$(kubectl -n $NS get vc demo -o jsonpath='{.status.phase}')\" = Running ]"
kubectl -n "$NS" apply -f examples/collection.yaml
wait_for "Collection Ready" 300 \
  bash -c "[ \"\$(kubectl -n $NS get vcol docs -o jsonpath='{.status.phase}')\" = Ready ]"

step "data round-trip through the gateway"
kubectl -n "$NS" port-forward svc/demo-gateway 17333:7333 >/dev/null 2>&1 &
PF_PID=$!
wait_for "gateway port-forward" 60 curl -sf http://127.0.0.1:17333/readyz
PASSWORD=$(kubectl -n "$NS" get secret demo-admin -o jsonpath='{.data.password}' | base64 -d)
python3 e2e/traffic.py --url http://127.0.0.1:17333 --password "$PASSWORD" --collection docs \
  --dimension 384 --points 2000 --scale-cmd "kubectl -n $NS patch vc demo --type merge -p" \
  --cluster-cmd "kubectl -n $NS get vc demo -o json" \
  --statefulset-cmd "kubectl -n $NS get sts demo-worker -o json"

step "delete"
kubectl -n "$NS" delete vcol docs --wait --timeout 120s
kubectl -n "$NS" delete vc demo --wait --timeout 300s
echo "e2e: passed"
