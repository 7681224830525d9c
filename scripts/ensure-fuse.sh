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
. "$(dirname "$0")/lib/apt-ensure.sh"
apt_ensure ensure-fuse "the FUSE tests" fuse3 libfuse3-dev gcc pkg-config
exit 0
