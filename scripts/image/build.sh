#!/usr/bin/env bash
# Builds fdckpt's container image without a Docker engine or a base image, from the
# steps of deploy/Dockerfile, as OCI image archives that `ctr images import` accepts:
#   fdckpt.tar   localhost/fdckpt:dev       (controller, agent, launcher source)
#   pause.tar    localhost/fdckpt-pause:1   (a static pause, for containerd's CRI sandbox_image)
#   images.env   FDCKPT_IMAGE=… and PAUSE_IMAGE=…
# Usage: scripts/image/build.sh [OUTDIR]. The last stdout line is the directory holding
# them: OUTDIR when given (the three files are copied there), else the cache directory.
#
# The runtime takes this machine's node (and the shared libraries ldd lists for it)
# instead of node:20-bookworm-slim; see docs/operator.md, "Building the image without
# Docker". Results are cached outside the checkout, keyed by a hash of what goes in,
# so a second call with nothing changed answers at once; concurrent callers wait on
# one lock. The same inputs give byte-identical archives (same digests).
set -euo pipefail
umask 022

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/scripts/image"
FDCKPT_REF=localhost/fdckpt:dev
PAUSE_REF=localhost/fdckpt-pause:1
# Bump when the recipe changes in a way the hashed inputs do not show.
recipe=1

die() { echo "image/build.sh: $*" >&2; exit 1; }
for tool in git node npm gcc make tar gzip sha256sum flock ldd; do
  command -v "$tool" >/dev/null || die "prerequisite missing: $tool"
done
node_bin=$(command -v node)
cp_bin=$(command -v cp)

case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac

# What deploy/Dockerfile's context holds (the .dockerignore allowlist), as tracked files.
inputs() {
  git -C "$root" ls-files -z -- src bin native package.json package-lock.json 'tsconfig*.json' |
    while IFS= read -r -d '' f; do
      case $f in native/build/* | *.fdimg) continue ;; esac
      [ -f "$root/$f" ] && printf '%s\0' "$f"
    done
}

key=$(
  {
    (cd "$root" && inputs | xargs -0 -r sha256sum)
    (cd "$here" && sha256sum build.sh oci.sh pause.c)
    echo "node $("$node_bin" --version) $(sha256sum <"$node_bin" | cut -c1-16)"
    echo "gcc $(gcc -dumpfullversion) arch $arch recipe $recipe"
  } | sha256sum | cut -c1-16
)
[ -n "${FDCKPT_IMAGE_CACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ] || die "set HOME, XDG_CACHE_HOME or FDCKPT_IMAGE_CACHE (where the image cache lives)"
cache=${FDCKPT_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdckpt/image}
dir="$cache/$key"

complete() { [ -s "$dir/fdckpt.tar" ] && [ -s "$dir/pause.tar" ] && [ -s "$dir/images.env" ]; }

# Prints the result directory: the cache's, or OUTDIR with the results copied in.
finish() {
  if [ $# -gt 0 ] && [ -n "$1" ]; then
    mkdir -p "$1"
    cp "$dir/fdckpt.tar" "$dir/pause.tar" "$dir/images.env" "$1/"
    (cd "$1" && pwd)
  else
    echo "$dir"
  fi
}

if complete; then finish "$@"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if complete; then finish "$@"; exit 0; fi

start=$(date +%s)
stage="$dir.partial"
rm -rf "$stage"
mkdir -p "$stage"
work="$stage/work"
echo "image/build.sh: building $FDCKPT_REF and $PAUSE_REF into $dir" >&2

# Runs a step with its output in a log, showing the log's end when it fails.
step() {
  local name=$1 log="$work/$1.log"
  shift
  echo "  $name" >&2
  if ! "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "step '$name' failed (log above)"
  fi
}

# --- Stage "build": the TypeScript build, then production dependencies only. ---------
src="$work/src"
mkdir -p "$src"
(cd "$root" && inputs | xargs -0 -r cp --parents -t "$src")
npm_ci() (
  cd "$src"
  # NODE_ENV=production in the caller's environment would make npm ci skip tsc.
  unset NODE_ENV
  export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
  npm ci --ignore-scripts --offline || {
    echo "npm ci --offline failed (the npm cache lacks a package?): trying online" >&2
    npm ci --ignore-scripts
  }
)
step "npm ci" npm_ci
step "tsc" bash -c 'cd "$1" && npx --no-install tsc -p tsconfig.build.json' _ "$src"
step "npm prune" bash -c 'cd "$1" && npm prune --omit=dev --no-audit --no-fund' _ "$src"

# --- Stage "native": the launcher, static so that it runs in any container image, and
# the host scan's shared library (its libraries are the runtime's libc, put below). ---
step "make native" make -C "$src/native"
hold="$src/native/build/fdckpt-hold"
[ -x "$hold" ] || die "native/build/fdckpt-hold was not built"
if ldd "$hold" >/dev/null 2>&1; then die "fdckpt-hold is not static (is the static C library, libc6-dev, installed?)"; fi
scanlib="$src/native/build/libfdckpt-scan.so"
[ -f "$scanlib" ] || die "native/build/libfdckpt-scan.so was not built"
step "pause" gcc -static -O2 -Wall -Wextra -Werror -o "$work/pause" "$here/pause.c"
if ldd "$work/pause" >/dev/null 2>&1; then die "pause is not static"; fi

# --- Runtime root filesystem, as two layers: the base (node, its libraries, cp) and
# the application (/opt/fdckpt and the launcher), like the Dockerfile's base image
# and its COPYs. No shell: nothing the controller, the agent or the launcher init
# container (`cp`, src/controller/restore-pod.ts and webhook/mutate.ts) runs needs one.
base="$stage/rootfs/base"
app="$stage/rootfs/app"
mkdir -p "$base" "$app"

# The host's merged-/usr links (/bin -> usr/bin…), so paths ldd prints resolve the same.
for d in bin lib lib64 sbin; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$base/$d"; fi
done
# Copies host file $1 into the base at the same (directory-resolved) path, or at $2.
put() {
  local from=$1 to=${2:-}
  if [ -z "$to" ]; then to="$(cd "$(dirname "$from")" && pwd -P)/$(basename "$from")"; fi
  mkdir -p "$base$(dirname "$to")"
  cp -L "$from" "$base$to"
}
# The libraries and the loader ldd lists for $1; 1 when one is not found.
libs_of() {
  ldd "$1" 2>/dev/null | awk '
    $2 == "=>" && $3 == "not" { missing = 1; next }
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }
    END { exit missing }'
}
libs="$work/libs"
: >"$libs"
libs_of "$node_bin" >>"$libs" || die "ldd $node_bin: a library is not found"
libs_of "$cp_bin" >>"$libs" || die "ldd $cp_bin: a library is not found"
libs_of "$scanlib" >>"$libs" || die "ldd $scanlib: a library is not found"
# Native addons (koffi): the build for this libc needs its libraries; the ones for other
# libcs (musl) never load here and are skipped.
while IFS= read -r -d '' addon; do
  if ! libs_of "$addon" >>"$libs.addon"; then
    echo "  (skipping the libraries of ${addon#"$src/"}: not loadable on this libc)" >&2
  else
    cat "$libs.addon" >>"$libs"
  fi
  rm -f "$libs.addon"
done < <(find "$src/node_modules" -name '*.node' -type f -print0 | LC_ALL=C sort -z)
put "$node_bin" /usr/local/bin/node
put "$cp_bin"
LC_ALL=C sort -u "$libs" | while IFS= read -r lib; do put "$lib"; done

mkdir -p "$base/etc" "$base/tmp" "$base/root" "$base/home/nonroot"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' \
  >"$base/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$base/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$base/etc/nsswitch.conf"

mkdir -p "$app/opt/fdckpt" "$app/usr/local/lib/fdckpt"
cp -a "$src/node_modules" "$src/dist" "$src/package.json" "$src/bin" "$app/opt/fdckpt/"
cp "$hold" "$app/usr/local/lib/fdckpt/fdckpt-hold"
cp "$scanlib" "$app/usr/local/lib/fdckpt/libfdckpt-scan.so"

pause_root="$stage/rootfs/pause"
mkdir -p "$pause_root"
cp "$work/pause" "$pause_root/pause"

# Modes independent of the caller's umask and of the files' origins.
for r in "$base" "$app" "$pause_root"; do chmod -R u+rwX,go+rX,go-w "$r"; done
chmod 1777 "$base/tmp"
chmod 0700 "$base/root"
chown -R 65532:65532 "$base/home/nonroot" 2>/dev/null || true

# --- OCI layout (scripts/image/oci.sh: retar, blob, oci_image) ----------------------
# shellcheck source=oci.sh
. "$here/oci.sh"

echo "  OCI archives" >&2
version=$(node -p 'require(process.argv[1]).version' "$src/package.json")
fdckpt_cfg=$(node -e '
  const [version] = process.argv.slice(1);
  console.log(JSON.stringify({
    Env: ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_ENV=production", "FDCKPT_HOLD=/usr/local/lib/fdckpt/fdckpt-hold", "FDCKPT_SCAN_LIB=/usr/local/lib/fdckpt/libfdckpt-scan.so"],
    Entrypoint: ["node", "/opt/fdckpt/bin/fdckpt.js"],
    WorkingDir: "/opt/fdckpt",
    Labels: { "org.opencontainers.image.title": "fdckpt", "org.opencontainers.image.version": version },
  }));' "$version")
oci_image "$stage/oci-fdckpt" "$stage/fdckpt.tar" "$FDCKPT_REF" "$fdckpt_cfg" \
  "$base=fdckpt image/build.sh: node $("$node_bin" --version) from the build machine, its libraries, cp, /etc" \
  "$app=fdckpt image/build.sh: /opt/fdckpt (node_modules, dist, package.json, bin) and the launcher"
oci_image "$stage/oci-pause" "$stage/pause.tar" "$PAUSE_REF" \
  '{"Env":["PATH=/"],"Entrypoint":["/pause"],"WorkingDir":"/"}' \
  "$pause_root=fdckpt image/build.sh: static pause"
printf 'FDCKPT_IMAGE=%s\nPAUSE_IMAGE=%s\n' "$FDCKPT_REF" "$PAUSE_REF" >"$stage/images.env"

# Only the results stay in the cache.
chmod -R u+w "$stage"
rm -rf "$stage/work" "$stage/rootfs" "$stage/oci-fdckpt" "$stage/oci-pause"
rm -rf "$dir"
mv "$stage" "$dir"
echo "image/build.sh: built in $(($(date +%s) - start)) s: fdckpt.tar $(du -h "$dir/fdckpt.tar" | cut -f1), pause.tar $(du -h "$dir/pause.tar" | cut -f1)" >&2
finish "$@"
