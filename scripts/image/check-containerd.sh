#!/usr/bin/env bash
# Checks the archives of scripts/image/build.sh against a real containerd: starts a
# throwaway containerd (its own root, state and socket in a temp directory; the CRI
# plugin disabled, so it never touches the machine's containerd or kubelet), imports
# both archives into namespace k8s.io, lists them, runs the fdckpt CLI and a koffi load
# in the fdckpt image and the pause image (SIGTERM ends it), then stops and removes
# everything it made. Usage: scripts/image/check-containerd.sh [DIR]  (DIR: build.sh's
# output; default: run build.sh). Needs root, containerd, ctr and runc.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
for tool in containerd ctr runc; do
  command -v "$tool" >/dev/null || { echo "check-containerd.sh: prerequisite missing: $tool" >&2; exit 1; }
done
dir=${1:-$(bash "$here/build.sh" | tail -n 1)}
# shellcheck source=/dev/null
. "$dir/images.env"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  # Snapshots may still be mounted if a task was left behind.
  { grep -o " $tmp/[^ ]*" /proc/mounts || true; } | while read -r m; do umount "$m" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
cat >"$tmp/config.toml" <<EOF
version = 2
root = "$tmp/root"
state = "$tmp/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$tmp/containerd.sock"
[ttrpc]
  address = "$tmp/containerd.sock.ttrpc"
[debug]
  address = "$tmp/debug.sock"
EOF
containerd --config "$tmp/config.toml" >"$tmp/containerd.log" 2>&1 &
pid=$!
for _ in $(seq 50); do [ -S "$tmp/containerd.sock" ] && break; sleep 0.2; done
[ -S "$tmp/containerd.sock" ] || { tail -n 20 "$tmp/containerd.log" >&2; exit 1; }
c() { ctr -a "$tmp/containerd.sock" -n k8s.io "$@"; }

c images import "$dir/fdckpt.tar"
c images import "$dir/pause.tar"
c images ls
c images ls -q | grep -qx "$FDCKPT_IMAGE"
c images ls -q | grep -qx "$PAUSE_IMAGE"
c run --rm "$FDCKPT_IMAGE" check-version node /opt/fdckpt/bin/fdckpt.js --version
c run --rm --cwd /opt/fdckpt "$FDCKPT_IMAGE" check-koffi node --input-type=module -e \
  "const k = (await import('koffi')).default; console.log('koffi', k.version, 'getpid()', k.load('libc.so.6').func('int getpid()')())"
c run -d "$PAUSE_IMAGE" check-pause
sleep 1
c task kill -s SIGTERM check-pause
for _ in $(seq 50); do c task ls | grep -q 'check-pause.*STOPPED' && break; sleep 0.2; done
c task ls | grep -q 'check-pause.*STOPPED' || { echo "check-containerd.sh: pause did not stop on SIGTERM" >&2; exit 1; }
c task delete check-pause >/dev/null
c containers rm check-pause
echo "check-containerd.sh: both images import and run"
