#!/bin/sh
# Sourced by the ensure-* scripts: apt_ensure NAME "WHO REPORTS" PACKAGE...
# Installs the given Debian packages with apt-get (sudo when not root), never starting
# their services (policy-rc.d 101: the tests start their own servers and daemons, and the
# host must not keep them running). Never fails: the caller runs as npm's pretest, and
# the tests that need a package say what is missing (and fail under CI=true).
apt_ensure() {
  name=$1
  reporter=$2
  shift 2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: missing $* and apt-get is not available; install them yourself" >&2
    return 0
  fi
  sudo=""
  [ "$(id -u)" != "0" ] && sudo="sudo"
  echo "$name: installing Debian's $*" >&2
  rcd=/usr/sbin/policy-rc.d
  placed=""
  if [ ! -e "$rcd" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$rcd" >/dev/null && $sudo chmod 755 "$rcd" && placed=1
  fi
  if ! ($sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@"); then
    echo "$name: could not install $*; $reporter will report it" >&2
  fi
  [ -n "$placed" ] && $sudo rm -f "$rcd"
  return 0
}
