#!/usr/bin/env bash
# Debian packages k8py needs, installed only when missing and only as root.
#   scripts/system-deps.sh         what `k8py server` needs to run pods (runc, CNI, iptables)
#   scripts/system-deps.sh --test  also what the tests need (a local registry, busybox and nginx
#                                  to build test images from, curl, nsenter)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v python3 >/dev/null || need+=(python3)
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
# The node agent: runc, the CNI plugins, and the pod network / kube-proxy tools.
command -v runc >/dev/null || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
command -v iptables-restore >/dev/null || need+=(iptables)
command -v conntrack >/dev/null || need+=(conntrack)
command -v ip >/dev/null || need+=(iproute2)
command -v nsenter >/dev/null || need+=(util-linux)
if [ "${1:-}" = "--test" ]; then
  command -v docker-registry >/dev/null || need+=(docker-registry)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
  [ -x /usr/sbin/nginx ] || need+=(nginx-light)
  command -v curl >/dev/null || need+=(curl)
fi
[ ${#need[@]} -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
  echo "k8py: missing Debian packages (${need[*]}); install them as root to run pods" >&2
  exit 0
fi
# Packages like nginx must not start their services here (only their files are used).
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
fi
apt-get update -qq
apt-get install -y -qq "${need[@]}"
[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
