#!/usr/bin/env bash
# Builds the image the acceptance corpus runs as pods (test/node/corpus-pods.test.ts),
# without a Docker engine or a registry, as an OCI archive `ctr images import` accepts:
#   corpus.tar   localhost/fdckpt-corpus:1
# It holds this machine's Debian packages of the corpus programs (the ones
# scripts/ensure-corpus.sh installs: redis, memcached, nginx, postgres, python3) with
# dash as /bin/sh (initdb runs its bootstrap through popen), the libraries ldd lists for
# every ELF file among them, a few zoneinfo files, and /etc/passwd with root, nobody and
# postgres (uid 999). Packages are found by a file each installs, so the versions are the
# ones the process corpus (test/corpus) runs. The Node.js server runs in fdckpt's own
# image, which has node.
# Usage: scripts/image/build-corpus.sh. The last stdout line is the directory holding
# corpus.tar; cached outside the checkout, keyed by the package versions and this recipe.
set -euo pipefail
umask 022

here=$(cd "$(dirname "$0")" && pwd)
REF=localhost/fdckpt-corpus:1
# Bump when the recipe changes in a way the hashed inputs do not show.
recipe=1

die() { echo "image/build-corpus.sh: $*" >&2; exit 1; }
for tool in dpkg dpkg-query ldd tar gzip sha256sum flock node; do
  command -v "$tool" >/dev/null || die "prerequisite missing: $tool"
done
case $(uname -m) in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch=$(uname -m) ;;
esac

py=$(readlink -f /usr/bin/python3 2>/dev/null || true)
pylib=/usr/lib/$(basename "${py:-python3}")
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
# One file per program (and the python stdlib modules http.server needs); their packages go in.
marks=(/usr/bin/redis-server /usr/bin/redis-check-rdb /usr/bin/memcached /usr/sbin/nginx
  "$pgbin/postgres" "$py" "$pylib/os.py" "$pylib/http/server.py" /bin/dash)
packages=()
for f in "${marks[@]}"; do
  [ -e "$f" ] || die "$f is missing (scripts/ensure-corpus.sh installs the corpus programs)"
  p=$(dpkg -S "$f" 2>/dev/null | head -n 1 | cut -d: -f1) || true
  [ -n "$p" ] || die "no Debian package owns $f"
  packages+=("$p")
done
mapfile -t packages < <(printf '%s\n' "${packages[@]}" | LC_ALL=C sort -u)

key=$(
  {
    dpkg-query -W -f '${Package} ${Version} ${Architecture}\n' "${packages[@]}"
    (cd "$here" && sha256sum build-corpus.sh oci.sh)
    echo "arch $arch recipe $recipe"
  } | sha256sum | cut -c1-16
)
[ -n "${FDCKPT_IMAGE_CACHE:-}${XDG_CACHE_HOME:-}${HOME:-}" ] || die "set HOME, XDG_CACHE_HOME or FDCKPT_IMAGE_CACHE (where the image cache lives)"
cache=${FDCKPT_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fdckpt/image}
dir="$cache/corpus-$key"
if [ -s "$dir/corpus.tar" ]; then echo "$dir"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.build-corpus.lock"
flock 9
if [ -s "$dir/corpus.tar" ]; then echo "$dir"; exit 0; fi

start=$(date +%s)
stage="$dir.partial"
rm -rf "$stage"
rootfs="$stage/rootfs"
mkdir -p "$rootfs"
echo "image/build-corpus.sh: building $REF from ${packages[*]} into $dir" >&2

# The host's merged-/usr links (/bin -> usr/bin…), so the paths dpkg and ldd print resolve the same.
for d in bin lib lib64 sbin; do
  if [ -L "/$d" ]; then ln -s "$(readlink "/$d")" "$rootfs/$d"; fi
done
# Copies host file or symlink $1 to the same (directory-resolved) path in the image.
put() {
  local from=$1 d
  d=$(cd "$(dirname "$from")" && pwd -P)
  mkdir -p "$rootfs$d"
  cp -P --preserve=mode "$from" "$rootfs$d/"
}
is_elf() { [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; }

elves="$stage/elves"
: >"$elves"
for p in "${packages[@]}"; do
  while IFS= read -r f; do
    case $f in /usr/share/doc/* | /usr/share/man/* | /usr/share/locale/* | /usr/share/lintian/*) continue ;; esac
    if [ -L "$f" ] || [ -f "$f" ]; then
      put "$f"
      if [ ! -L "$f" ] && is_elf "$f"; then echo "$f" >>"$elves"; fi
    fi
  done < <(dpkg -L "$p")
done
ln -sf dash "$rootfs/usr/bin/sh"
ln -sf "$(basename "$py")" "$rootfs/usr/bin/python3"

# The libraries and the loader of every ELF file: one ldd each, de-duplicated.
libs="$stage/libs"
: >"$libs"
while IFS= read -r f; do
  ldd "$f" 2>/dev/null | awk '
    $2 == "=>" && $3 ~ /^\// { print $3; next }
    $1 ~ /^\// { print $1 }' >>"$libs" || true
done <"$elves"
LC_ALL=C sort -u "$libs" | while IFS= read -r lib; do
  # A library is copied with the link chain that names it (libfoo.so.1 -> libfoo.so.1.2).
  put "$lib"
  [ -L "$lib" ] && put "$(readlink -f "$lib")"
done
for z in UTC GMT Etc/UTC Etc/GMT; do
  [ -e "/usr/share/zoneinfo/$z" ] && { mkdir -p "$rootfs/usr/share/zoneinfo/$(dirname "$z")"; cp -L "/usr/share/zoneinfo/$z" "$rootfs/usr/share/zoneinfo/$z"; }
done

mkdir -p "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/data" "$rootfs/var/lib/postgresql"
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'postgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh' \
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' >"$rootfs/etc/passwd"
printf '%s\n' 'root:x:0:' 'postgres:x:999:' 'nogroup:x:65534:' >"$rootfs/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
chmod -R u+rwX,go+rX,go-w "$rootfs"
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

# shellcheck source=oci.sh
. "$here/oci.sh"
cfg=$(node -e '
  const [pg] = process.argv.slice(1);
  console.log(JSON.stringify({
    Env: [`PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:${pg}`, "TZ=UTC"],
    WorkingDir: "/",
    Labels: { "org.opencontainers.image.title": "fdckpt-corpus" },
  }));' "$pgbin")
oci_image "$stage/oci" "$stage/corpus.tar" "$REF" "$cfg" \
  "$rootfs=fdckpt image/build-corpus.sh: $(dpkg-query -W -f '${Package}=${Version} ' "${packages[@]}")and their libraries"
rm -rf "$stage/rootfs" "$stage/oci" "$stage/elves" "$stage/libs"
rm -rf "$dir"
mv "$stage" "$dir"
echo "image/build-corpus.sh: built in $(($(date +%s) - start)) s: corpus.tar $(du -h "$dir/corpus.tar" | cut -f1)" >&2
echo "$dir"
