#!/usr/bin/env bash
# Builds (once per machine) the pinned Kubernetes components and etcd that fdckpt's
# tests and `fdckpt local` run, from the Go modules in hack/kube and hack/etcd, and
# prints the directory that holds them.
#
# The binaries are cached outside the checkout, keyed by the versions and by the
# hash of the wrapper modules, so a clean clone on a machine that built them once
# finds them at once. A cold build takes tens of minutes on 2 cores (docs/kube.md).
# Concurrent callers wait on one lock instead of building twice.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$root/hack/kube/go.mod")
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' "$root/hack/etcd/go.mod")
[ -n "$kube_version" ] && [ -n "$etcd_version" ] || { echo "build.sh: cannot read the pinned versions from hack/" >&2; exit 1; }
# Bump when the build's flags change: the cache key is the modules plus this recipe.
recipe=1
modhash=$( (cat "$root"/hack/kube/go.mod "$root"/hack/kube/go.sum "$root"/hack/etcd/go.mod "$root"/hack/etcd/go.sum \
  "$root"/hack/etcd/main.go; echo "recipe $recipe") | sha256sum | cut -c1-12)
cache=${FDCKPT_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdckpt/kube}
bin="$cache/$kube_version-etcd-$etcd_version-$modhash/bin"
commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)

complete() {
  for c in "${commands[@]}" etcd; do [ -x "$bin/$c" ] || return 1; done
}
if complete; then echo "$bin"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if complete; then echo "$bin"; exit 0; fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build the Kubernetes components (Go 1.25 or later)" >&2; exit 1; }
stage="$bin.partial"
rm -rf "$stage"; mkdir -p "$stage"
minor=${kube_version#v1.}; minor=${minor%%.*}
pkgv=k8s.io/component-base/version
cgov=k8s.io/client-go/pkg/version
stamp="-s -w"
for p in $pkgv $cgov; do
  stamp="$stamp -X $p.gitVersion=$kube_version -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

# Runs `go build ARGS` in $1 for $2, printing every 15 s how many packages are compiled
# so that a cold build shows it is alive; on failure, the end of go's output.
build() {
  local dir=$1 what=$2 out n=0 line
  shift 2
  out="$stage/$what.log"
  (cd "$dir" && exec go build -v -trimpath "$@") >"$out" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 15
    n=$(wc -l <"$out")
    echo "  $what: $n packages compiled so far" >&2
  done
  if ! wait "$pid"; then
    echo "build.sh: building $what failed:" >&2
    tail -n 30 "$out" >&2
    exit 1
  fi
  echo "  $what: $(wc -l <"$out") packages compiled" >&2
}

start=$(date +%s)
echo "build.sh: building Kubernetes $kube_version and etcd $etcd_version into $bin (once per machine; a cold build takes 20-40 min)" >&2
export CGO_ENABLED=0 GOFLAGS=-mod=mod
build "$root/hack/etcd" etcd -ldflags "-s -w" -o "$stage/etcd" .
# shellcheck disable=SC2046 # one word per package
build "$root/hack/kube" kubernetes -ldflags "$stamp" -o "$stage/" $(printf 'k8s.io/kubernetes/cmd/%s ' "${commands[@]}")
for c in "${commands[@]}" etcd; do [ -x "$stage/$c" ] || { echo "build.sh: $c was not built" >&2; exit 1; }; done
rm -f "$stage"/*.log
rm -rf "$bin"; mv "$stage" "$bin"
echo "build.sh: built in $(( $(date +%s) - start )) s: $(du -sh "$bin" | cut -f1) in $bin" >&2
echo "$bin"
