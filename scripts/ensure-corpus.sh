#!/bin/sh
# Makes sure the acceptance corpus's real programs are on the machine (test/corpus):
# redis-server, memcached, nginx (nginx-light), postgres (postgresql), python3, node.
# Installs the missing ones from Debian with apt-get. Never fails the caller (it runs as
# npm's pretest): a program still missing makes the corpus test fail under CI=true,
# naming it.
set -u
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v memcached >/dev/null 2>&1 || missing="$missing memcached"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx-light"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing="$missing postgresql"
command -v psql >/dev/null 2>&1 || missing="$missing postgresql-client"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-corpus: missing$missing and apt-get is not available; install them yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
echo "ensure-corpus: installing Debian's$missing" >&2
# policy-rc.d 101: Debian's maintainer scripts must not start the servers as services
# (the corpus starts its own on loopback ports, and the host must not keep them running).
rcd=/usr/sbin/policy-rc.d
placed=""
if [ ! -e "$rcd" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$rcd" >/dev/null && $SUDO chmod 755 "$rcd" && placed=1
fi
# shellcheck disable=SC2086 # one word per package
if ! ($SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing); then
  echo "ensure-corpus: could not install$missing; the corpus test will report it" >&2
fi
[ -n "$placed" ] && $SUDO rm -f "$rcd"
exit 0
