#!/usr/bin/env bash
# Builds (once per machine) the pinned helm the chart tests run (test/deploy/chart.test.ts),
# from the Go module in hack/helm, and prints the path of the binary.
#
# As scripts/kube/build.sh: cached outside the checkout (beside the Kubernetes
# binaries), keyed by the version and the hash of the wrapper module, built under
# a lock so that concurrent callers wait instead of building twice.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
version=$(awk '$1 == "require" && $2 == "helm.sh/helm/v4" {print $3}' "$root/hack/helm/go.mod")
[ -n "$version" ] || { echo "helm/build.sh: cannot read the pinned helm version from hack/helm/go.mod" >&2; exit 1; }
# Bump when the build's flags change: the cache key is the module plus this recipe.
recipe=1
modhash=$( (cat "$root"/hack/helm/go.mod "$root"/hack/helm/go.sum; echo "recipe $recipe") | sha256sum | cut -c1-12)
cache=${FDCKPT_HELM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdckpt/helm}
bin="$cache/$version-$modhash/bin"
if [ -x "$bin/helm" ]; then echo "$bin/helm"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$bin/helm" ]; then echo "$bin/helm"; exit 0; fi

command -v go >/dev/null || { echo "helm/build.sh: Go is needed to build helm (Go 1.25 or later)" >&2; exit 1; }
stage="$bin.partial"
rm -rf "$stage"; mkdir -p "$stage"
start=$(date +%s)
echo "helm/build.sh: building helm $version into $bin (once per machine; a few minutes cold)" >&2
export CGO_ENABLED=0 GOFLAGS=-mod=mod
log="$stage/build.log"
# Without the stamp `helm version` says the module's default (v4.3), not the pin.
(cd "$root/hack/helm" && exec go build -v -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
  -o "$stage/helm" helm.sh/helm/v4/cmd/helm) >"$log" 2>&1 &
pid=$!
# A cold build prints nothing for minutes: say every 15 s that it is alive.
while kill -0 "$pid" 2>/dev/null; do
  sleep 15
  echo "  helm: $(wc -l <"$log") packages compiled so far" >&2
done
if ! wait "$pid"; then
  echo "helm/build.sh: building helm failed:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
[ -x "$stage/helm" ] || { echo "helm/build.sh: helm was not built" >&2; exit 1; }
rm -f "$log"
rm -rf "$bin"; mv "$stage" "$bin"
echo "helm/build.sh: built in $(( $(date +%s) - start )) s: $(du -sh "$bin" | cut -f1) in $bin" >&2
echo "$bin/helm"
