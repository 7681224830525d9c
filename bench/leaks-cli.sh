#!/usr/bin/env bash
# bench/leaks-cli.sh: `fdckpt leaks` with ~100k fds open on the host, against the kernel's
# floor, interleaved in one loop (issue 14). The host: HOLDERS python3 processes of FDS
# fds each (pipes, socketpairs, two regular files opened many times, eventfds); the pod:
# one `sleep` in a cgroup of its own. Each round runs, in this order:
#   the C floor (bench/floors/proc-fd-floor.c) on 1 and 2 threads, its readdir alone on 2,
#   then `node <checkout>/bin/fdckpt.js leaks --cgroup <pod> --json` for every checkout
#   given (default: this one), wall time and the report's scanned.ms.
# Two checkouts compare two builds of fdckpt on the same processes in the same run.
#
#   sudo bench/leaks-cli.sh [checkout ...]        (root; a cgroup v2 or v1 freezer hierarchy;
#                                                  ROUNDS=3 HOLDERS=10 FDS=10000; NODE_ARGS="--cpu-prof" to profile)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
rounds=${ROUNDS:-3}
holders=${HOLDERS:-10}
fds=${FDS:-10000}
checkouts=("$@")
[ ${#checkouts[@]} -gt 0 ] || checkouts=("$here")
for c in "${checkouts[@]}"; do
  [ -f "$c/dist/cli/main.js" ] || { echo "$c: not built (run npm run build there)" >&2; exit 2; }
done

work=$(mktemp -d)
name=/fdckpt-leaks-bench-$$
# cgroup v2 where it is mounted (hybrid hosts: /sys/fs/cgroup/unified), else v1's freezer.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then pod=/sys/fs/cgroup$name
elif [ -d /sys/fs/cgroup/unified ]; then pod=/sys/fs/cgroup/unified$name
else pod=/sys/fs/cgroup/freezer$name; fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -d "$pod" ] && rmdir "$pod" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cc -O2 -o "$work/floor" "$here/bench/floors/proc-fd-floor.c"

for _ in $(seq "$holders"); do
  python3 -c "
import os, socket, resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
keep = []
for i in range($fds // 7):
    keep.append(os.pipe())
    keep.append(socket.socketpair())
    keep.append(os.open('/etc/hostname', os.O_RDONLY))
    keep.append(os.open('/etc/hosts', os.O_RDONLY))
    keep.append(os.eventfd(0))
open('$work/ready.' + str(os.getpid()), 'w').close()
time.sleep(3600)
" &
  pids+=($!)
done
mkdir "$pod"
sleep 3600 &
pids+=($!)
echo $! >"$pod/cgroup.procs"
until [ "$(ls "$work" | grep -c '^ready\.')" -ge "$holders" ]; do sleep 0.2; done

echo "date: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores, kernel $(uname -r), node $(node --version)"
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }
for r in $(seq "$rounds"); do
  line="round $r:"
  for t in 1 2; do
    line+=" floor(${t})=$("$work/floor" "$t" | awk '{ printf "%.0fms", $(NF-1) }')"
  done
  line+=" readdir(2)=$("$work/floor" 2 readdir | awk '{ printf "%.0fms", $(NF-1) }')"
  for c in "${checkouts[@]}"; do
    t0=$(date +%s%N)
    # Exit 3 = leaks found (the pod's sleep shares its stdio with this shell): a result, not a failure.
    out=$(node ${NODE_ARGS:-} "$c/bin/fdckpt.js" leaks --cgroup "$name" --json) || [ $? -eq 3 ]
    t1=$(date +%s%N)
    scan=$(printf '%s' "$out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const r=JSON.parse(s).scanned;console.log(r.ms.toFixed(0)+"ms fds="+r.fds)})')
    line+=" | $(basename "$c"): cli=$(ms "$t0" "$t1")ms scan=${scan}"
  done
  echo "$line"
done
