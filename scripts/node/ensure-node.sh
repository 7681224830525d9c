#!/bin/sh
# Makes sure the real-node tests (test/node) can run a kubelet's container runtime:
# Debian's containerd (1.6, with ctr), runc and the CNI plugins (bridge, host-local,
# loopback in /usr/lib/cni). Does nothing when they are there, otherwise installs them
# with apt-get. Never fails the caller (it runs as npm's pretest).
set -u
if command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 &&
  command -v runc >/dev/null 2>&1 && [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ]; then
  exit 0
fi
. "$(dirname "$0")/../lib/apt-ensure.sh"
apt_ensure ensure-node "the real-node tests" containerd runc containernetworking-plugins
exit 0
