#!/bin/sh
# Makes sure the real-node tests (test/node) can run a kubelet's container runtime:
# Debian's containerd (1.6, with ctr), runc and the CNI plugins (bridge, host-local,
# loopback in /usr/lib/cni). Does nothing when they are there, otherwise installs them
# with apt-get. Never fails the caller (it runs as npm's pretest): if something is still
# missing, the real-node tests say what and, under CI=true, fail.
set -u
if command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 &&
  command -v runc >/dev/null 2>&1 && [ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-node: containerd/runc/CNI plugins missing and apt-get is not available; install them yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
echo "ensure-node: installing Debian's containerd, runc and containernetworking-plugins" >&2
if ! { $SUDO apt-get update -q &&
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q containerd runc containernetworking-plugins; }; then
  echo "ensure-node: could not install the container runtime; the real-node tests will report it" >&2
fi
exit 0
