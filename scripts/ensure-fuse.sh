#!/bin/sh
# Makes sure the FUSE security tests can build and mount their tiny FUSE server
# (test/fixtures/tinyfuse.c): gcc, pkg-config, libfuse3-dev and fuse3 (fusermount3).
# Does nothing when they are there, otherwise installs them with apt-get.
# Never fails the caller (it runs as npm's pretest): if something is still missing,
# the FUSE tests say what and, under CI=true, fail.
set -u
if command -v gcc >/dev/null 2>&1 && command -v fusermount3 >/dev/null 2>&1 &&
  pkg-config --exists fuse3 2>/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-fuse: fuse3/libfuse3-dev missing and apt-get is not available; install them yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
echo "ensure-fuse: installing Debian's fuse3, libfuse3-dev, gcc and pkg-config" >&2
if ! { $SUDO apt-get update -q &&
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q fuse3 libfuse3-dev gcc pkg-config; }; then
  echo "ensure-fuse: could not install the FUSE packages; the FUSE tests will report it" >&2
fi
exit 0
