#!/bin/sh
# Makes sure the acceptance corpus's real programs are on the machine (test/corpus):
# redis-server, memcached, nginx (nginx-light), postgres (postgresql), python3, node; and
# busybox, the multi-call binary test/replay/command.test.ts restores as an applet.
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
[ -x /bin/busybox ] || missing="$missing busybox"
[ -z "$missing" ] && exit 0
. "$(dirname "$0")/lib/apt-ensure.sh"
# shellcheck disable=SC2086 # one word per package
apt_ensure ensure-corpus "the corpus test" $missing
exit 0
