#!/usr/bin/env bash
# Builds e2e/apiserver — a real Kubernetes control plane (etcd,
# kube-apiserver, kube-controller-manager) with kubectl and helm built in,
# one Go binary — once per change of its sources, into a cache outside the
# clone, and prints the binary's path. The first build compiles most of
# Kubernetes (about 10 minutes on 2 cores); Go's own build cache
# (~/.cache/go-build) and module cache make later ones take seconds.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/../e2e/apiserver"
if ! command -v go >/dev/null 2>&1; then
  echo "apiserver: no Go toolchain on PATH (Go 1.26 or newer is needed)" >&2
  exit 1
fi
CACHE="${VECTRON_APISERVER_CACHE:-$HOME/.cache/vectron/apiserver}"
key=$( (go version; cat "$self" go.mod go.sum ./*.go) | sha256sum | cut -c1-16)
bin="$CACHE/apiserver-$key"
if [ ! -x "$bin" ]; then
  mkdir -p "$CACHE"
  echo "apiserver: building e2e/apiserver into $bin (a cold build compiles most of Kubernetes: ~10 minutes on 2 cores)" >&2
  start=$(date +%s)
  # The version every component reports (helm checks a chart's kubeVersion
  # against it); without these it says v0.0.0-master.
  kube=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' go.mod)
  minor=$(echo "$kube" | cut -d. -f2)
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$kube -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  helm=$(awk '$1 == "helm.sh/helm/v4" && $2 ~ /^v/ {print $2; exit}' go.mod)
  ldflags="$ldflags -X helm.sh/helm/v4/internal/version.version=$helm"
  go build -buildvcs=false -ldflags "$ldflags" -o "$bin.partial" . >&2
  mv "$bin.partial" "$bin"
  echo "apiserver: built in $(( $(date +%s) - start ))s" >&2
  find "$CACHE" -maxdepth 1 -name 'apiserver-*' ! -name "apiserver-$key" -delete
fi
echo "$bin"
