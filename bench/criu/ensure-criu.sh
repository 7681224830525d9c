#!/bin/sh
# Print the path of a CRIU that works on this kernel, installing it if needed.
#
# 1. Debian's own package (bookworm: criu 3.17.1) from apt, as asked. If `criu check`
#    passes, that is what the baseline uses.
# 2. On kernels >= 6.13, 3.17.1 cannot start at all: the kernel splits the vvar
#    mapping in two ([vvar] + [vvar_vclock], kernel commit e93d2521b27f) and CRIU's
#    kerndat rejects its own vDSO layout ("vdso: Unexpected rt vDSO area bounds").
#    CRIU >= 4.1 handles it (upstream PR checkpoint-restore/criu#2539). Then we build
#    Debian's newer source (sid, criu 4.2.1) into /opt/criu-4.2.1, fetched with apt
#    from a private source list (the system's apt configuration is not touched) and
#    checked against the SHA-256 in the signed Sources index.
#    CRIU_NO_BUILD=1 skips this step and fails instead.
#
# Everything but the final path goes to stderr. The reason 3.17.1 failed is kept in
# $OUT/debian-criu-check.log (OUT defaults to /var/tmp/fdckpt-criu).
set -eu
OUT=${OUT:-/var/tmp/fdckpt-criu}
SRC_VERSION=4.2.1-1
UPSTREAM=${SRC_VERSION%-*}
PREFIX=/opt/criu-$UPSTREAM
mkdir -p "$OUT"
export DEBIAN_FRONTEND=noninteractive

say() { echo "ensure-criu: $*" >&2; }

# The Debian archive this machine's apt is configured with (deb822 .sources or one-line
# .list entries), never a host name of ours: the security archive has no sid sources.
machine_mirror() {
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; break }}'
  } | grep -v -- '-security' | head -1
}

works() { "$1" check >"$2" 2>&1; }

if [ "$(id -u)" != 0 ]; then
  say "must run as root (apt-get, and CRIU itself needs CAP_SYS_ADMIN)"
  exit 1
fi

if ! command -v criu >/dev/null 2>&1; then
  say "installing Debian's criu"
  apt-get update -qq >&2
  apt-get install -y -qq criu >&2
fi
DEB=$(command -v criu)
if works "$DEB" "$OUT/debian-criu-check.log"; then
  echo "$DEB"
  exit 0
fi
say "$("$DEB" --version | head -1) fails 'criu check' here:"
grep -E 'Error' "$OUT/debian-criu-check.log" | sed 's/^/  /' >&2 || true

if [ -x "$PREFIX/sbin/criu" ] && works "$PREFIX/sbin/criu" "$OUT/criu-$UPSTREAM-check.log"; then
  echo "$PREFIX/sbin/criu"
  exit 0
fi
if [ "${CRIU_NO_BUILD:-0}" = 1 ]; then
  say "CRIU_NO_BUILD=1: not building CRIU $UPSTREAM"
  exit 1
fi

say "building CRIU $UPSTREAM from Debian's source package into $PREFIX"
apt-get install -y -qq --no-install-recommends build-essential pkgconf libbsd-dev libcap-dev \
  libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev libprotobuf-c-dev libprotobuf-dev \
  protobuf-c-compiler protobuf-compiler uuid-dev python3-protobuf >&2

MIRROR=${CRIU_APT_MIRROR:-$(machine_mirror)}
if [ -z "$MIRROR" ]; then
  say "no Debian archive in this machine's apt sources (set CRIU_APT_MIRROR to one)"
  exit 1
fi
say "sources from $MIRROR (this machine's apt configuration)"
APT="$OUT/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
echo "deb-src $MIRROR sid main" >"$APT/sources.list"
set -- -o Dir::Etc::SourceList="$APT/sources.list" -o Dir::Etc::SourceParts=/dev/null \
  -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT/cache"
apt-get "$@" update -qq >&2
# The stanza of the wanted version (sid may list several).
META=$(apt-cache "$@" showsrc criu | awk -v v="$SRC_VERSION" 'BEGIN{RS=""} $0 ~ "\nVersion: " v "\n" {print; exit}')
DIR=$(echo "$META" | sed -n 's/^Directory: //p' | head -1)
ORIG="criu_$UPSTREAM.orig.tar.xz"
# The Checksums-Sha256 block lists "sha256 size name"; the index itself is signed.
SHA=$(echo "$META" | awk -v f="$ORIG" '/^Checksums-Sha256:/{on=1; next} /^[^ ]/{on=0} on && $3 == f {print $1; exit}')
if [ -z "$DIR" ] || [ -z "$SHA" ]; then
  say "Debian's Sources index has no criu $SRC_VERSION"
  exit 1
fi
# apt-helper verifies the hash; apt-get source would also fetch the packaging, not needed.
/usr/lib/apt/apt-helper download-file "$MIRROR/$DIR/$ORIG" "$OUT/$ORIG" "SHA256:$SHA" >&2
rm -rf "$OUT/criu-$UPSTREAM"
tar -C "$OUT" -xf "$OUT/$ORIG"
make -C "$OUT/criu-$UPSTREAM" -j"$(nproc)" criu >"$OUT/build.log" 2>&1 || {
  tail -20 "$OUT/build.log" >&2
  say "build failed, log in $OUT/build.log"
  exit 1
}
install -D -m 755 "$OUT/criu-$UPSTREAM/criu/criu" "$PREFIX/sbin/criu"
if ! works "$PREFIX/sbin/criu" "$OUT/criu-$UPSTREAM-check.log"; then
  cat "$OUT/criu-$UPSTREAM-check.log" >&2
  say "CRIU $UPSTREAM fails 'criu check' too"
  exit 1
fi
echo "$PREFIX/sbin/criu"
