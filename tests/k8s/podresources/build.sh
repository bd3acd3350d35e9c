#!/usr/bin/env bash
# Builds the PodResources test server (main.go beside this file: the kubelet's
# v1.PodResourcesLister from k8s.io/kubelet's Go API, through the Go module
# proxy) and caches it outside the repository, keyed by the source's hash.
# Idempotent. The last line printed on stdout is the binary's absolute path.
#
# Environment: MNP_CACHE_DIR (cache root, as for build-apiserver.sh), GO (go command).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
CACHE_ROOT="${MNP_CACHE_DIR:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/multi-networkpolicy-tc}"
HASH="$(cat "${HERE}/main.go" "${HERE}/go.mod" "${HERE}/go.sum" | sha256sum | cut -c1-16)"
BIN="${CACHE_ROOT}/podresources-server-${HASH}/podresources-server"
if [[ -x "${BIN}" ]]; then
  echo "${BIN}"
  exit 0
fi
GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
mkdir -p "$(dirname "${BIN}")"
cd "${HERE}"
GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 \
  "${GO}" build -trimpath -o "${BIN}.tmp" . >&2
mv -f "${BIN}.tmp" "${BIN}"
echo "${BIN}"
