"""A container's runtime config: resources as cgroup numbers, securityContext, stdio."""

from __future__ import annotations

from k8py.kubelet import quantity
from k8py.kubelet.runtime.interface import ContainerConfig

CPU_PERIOD_US = 100_000
MIN_SHARES = 2


def cpu_shares(request) -> int:
    return max(MIN_SHARES, quantity.millicores(request) * 1024 // 1000)


def container_config(pod: dict, c: dict, image: str, env, command, args, mounts, labels: dict,
                     log_path: str) -> ContainerConfig:
    res = c.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = c.get("securityContext") or {}
    caps = sc.get("capabilities") or {}
    cpu_request = requests.get("cpu") or limits.get("cpu")
    config = ContainerConfig(
        name=c["name"], image=image, command=list(command), args=list(args), env=list(env),
        working_dir=c.get("workingDir") or None, mounts=list(mounts),
        stdin=bool(c.get("stdin")), stdin_once=bool(c.get("stdinOnce")), tty=bool(c.get("tty")),
        cpu_shares=cpu_shares(cpu_request) if cpu_request else MIN_SHARES,
        memory_limit_bytes=quantity.to_int(limits["memory"]) if limits.get("memory") else None,
        run_as_user=_first(sc.get("runAsUser"), pod_sc.get("runAsUser")),
        run_as_group=_first(sc.get("runAsGroup"), pod_sc.get("runAsGroup")),
        supplemental_groups=[int(g) for g in pod_sc.get("supplementalGroups") or []] +
        ([int(pod_sc["fsGroup"])] if pod_sc.get("fsGroup") is not None else []),
        read_only_root_filesystem=bool(sc.get("readOnlyRootFilesystem")),
        privileged=bool(sc.get("privileged")),
        capabilities_add=list(caps.get("add") or []), capabilities_drop=list(caps.get("drop") or []),
        allow_privilege_escalation=sc.get("allowPrivilegeEscalation", True) is not False,
        log_path=log_path, labels=dict(labels))
    if limits.get("cpu"):
        config.cpu_period_us = CPU_PERIOD_US
        config.cpu_quota_us = max(1000, quantity.millicores(limits["cpu"]) * CPU_PERIOD_US // 1000)
    return config


def _first(*values):
    return next((int(v) for v in values if v is not None), None)
