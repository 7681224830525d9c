#!/bin/sh
# Makes sure kubectl is on the machine for the local control plane's kubectl tests:
# does nothing when it is there, otherwise installs Debian's kubernetes-client with apt-get.
# Never fails the caller (it runs as npm's pretest): if kubectl is still missing, the
# kubectl tests say so and, under CI=true, fail.
set -u
if command -v kubectl >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-kubectl: kubectl is missing and apt-get is not available; install kubectl yourself" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
echo "ensure-kubectl: installing Debian's kubernetes-client (kubectl)" >&2
if $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q kubernetes-client; then
  kubectl version --client || true
else
  echo "ensure-kubectl: could not install kubernetes-client; the kubectl tests will report it" >&2
fi
exit 0
