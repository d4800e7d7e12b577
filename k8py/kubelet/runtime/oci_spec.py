"""Building a runc config.json from a ContainerConfig, its image and its sandbox.

Kubernetes' command rules: `command` replaces the image ENTRYPOINT (and drops
its CMD); `args` alone replaces CMD and keeps ENTRYPOINT. Env is the image's
with the container's entries overriding by name. User names resolve against
the image's /etc/passwd and /etc/group, as Docker/containerd do.
"""

from __future__ import annotations

from pathlib import Path

from k8py.kubelet.runtime.interface import ContainerConfig, Sandbox

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's (and containerd's) default capability set.
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
ALL_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


class SpecError(Exception):
    """The container cannot be described (no command, unknown user): CreateContainerError."""


def command_line(config: ContainerConfig, image_config: dict) -> list[str]:
    entrypoint = list(image_config.get("Entrypoint") or [])
    cmd = list(image_config.get("Cmd") or [])
    if config.command:
        argv = list(config.command) + list(config.args)
    elif config.args:
        argv = entrypoint + list(config.args)
    else:
        argv = entrypoint + cmd
    if not argv:
        raise SpecError("no command specified")
    return argv


def merged_env(config: ContainerConfig, image_config: dict) -> list[str]:
    env: dict[str, str] = {}
    for item in image_config.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    for key, value in config.env:
        env[key] = value
    env.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in env.items()]


def _read_db(rootfs: Path | None, name: str) -> list[list[str]]:
    if rootfs is None:
        return []
    try:
        text = (rootfs / "etc" / name).read_text(errors="replace")
    except OSError:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(config: ContainerConfig, image_user: str, rootfs: Path | None) -> dict:
    """The process user: runAsUser/runAsGroup win over the image USER; names come from the image."""
    passwd = _read_db(rootfs, "passwd")
    groups = _read_db(rootfs, "group")
    user_part, _, group_part = (image_user or "").partition(":")
    uid: int | None = config.run_as_user
    gid: int | None = config.run_as_group
    username = None
    if uid is None and user_part:
        if user_part.isdigit():
            uid = int(user_part)
        else:
            entry = next((e for e in passwd if e[0] == user_part and len(e) > 3), None)
            if entry is None:
                raise SpecError(f'unable to find user {user_part}: no matching entries in passwd file')
            uid, username = int(entry[2]), entry[0]
            if gid is None and not group_part:
                gid = int(entry[3])
    uid = uid or 0
    if gid is None and group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            entry = next((e for e in groups if e[0] == group_part and len(e) > 2), None)
            if entry is None:
                raise SpecError(f'unable to find group {group_part}: no matching entries in group file')
            gid = int(entry[2])
    if gid is None:
        entry = next((e for e in passwd if len(e) > 3 and e[2] == str(uid)), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        username = username or (entry[0] if entry else None)
    extra = list(config.supplemental_groups)
    if username:      # the groups /etc/group lists the user in, as `initgroups` would give
        extra += [int(e[2]) for e in groups if len(e) > 3 and username in e[3].split(",") and e[2].isdigit()]
    extra = sorted({g for g in extra if g != gid})
    user = {"uid": uid, "gid": gid}
    if extra:
        user["additionalGids"] = extra
    return user


def host_capabilities() -> list[str]:
    """Every capability this process may hand on (its bounding set): what "all" can mean here."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return [cap for bit, cap in enumerate(ALL_CAPABILITIES) if mask >> bit & 1]
    except OSError:
        pass
    return list(ALL_CAPABILITIES)


def capabilities(config: ContainerConfig) -> list[str]:
    if config.privileged:
        return host_capabilities()

    def norm(name: str) -> str:
        name = name.upper()
        return name if name.startswith("CAP_") or name == "ALL" else "CAP_" + name

    adds = [norm(c) for c in config.capabilities_add]
    drops = [norm(c) for c in config.capabilities_drop]
    caps = host_capabilities() if "ALL" in adds else list(DEFAULT_CAPABILITIES)
    caps += [c for c in adds if c != "ALL" and c not in caps]
    if "ALL" in drops:
        # `drop: [ALL]` with explicit adds keeps just the adds, as Docker does.
        return [c for c in adds if c != "ALL"]
    return [c for c in caps if c not in drops]


def _mount(dest: str, mtype: str, source: str, options: list[str]) -> dict:
    return {"destination": dest, "type": mtype, "source": source, "options": options}


def default_mounts(sandbox: Sandbox, shm_source: str, privileged: bool, host_network: bool) -> list[dict]:
    sys_mount = (_mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "rw" if privileged else "ro"])
                 if not host_network else
                 # sysfs can only be mounted by the owner of the network namespace.
                 _mount("/sys", "bind", "/sys", ["rbind", "nosuid", "noexec", "nodev", "rw" if privileged else "ro"]))
    return [
        _mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
        _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
        _mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                                                "gid=5"]),
        _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
        _mount("/dev/shm", "bind", shm_source, ["rbind", "nosuid", "noexec", "nodev"]),
        sys_mount,
        _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime",
                                                     "rw" if privileged else "ro"]),
    ]


def build_spec(config: ContainerConfig, image_config: dict, sandbox: Sandbox, *, rootfs: Path,
               cgroups_path: str, shm_source: str, host_pid: bool = False, swap_accounting: bool = True,
               pid_ns_path: str | None = None) -> dict:
    """pid_ns_path: a process namespace to join (a target container's) instead of the sandbox's."""
    privileged = config.privileged
    caps = capabilities(config)
    process = {
        "terminal": config.tty,
        "user": resolve_user(config, image_config.get("User") or "", rootfs),
        "args": command_line(config, image_config),
        "env": merged_env(config, image_config),
        "cwd": config.working_dir or image_config.get("WorkingDir") or "/",
        "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        "noNewPrivileges": not config.allow_privilege_escalation and not privileged,
    }
    if not process["cwd"].startswith("/"):
        process["cwd"] = "/" + process["cwd"]
    namespaces = [{"type": "mount"}]
    pid_ns_path = pid_ns_path or sandbox.pid_ns_path
    if pid_ns_path:
        namespaces.append({"type": "pid", "path": pid_ns_path})
    elif not host_pid:
        namespaces.append({"type": "pid"})
    for kind, path in (("network", sandbox.netns_path), ("ipc", sandbox.ipc_ns_path),
                       ("uts", sandbox.uts_ns_path)):
        if path:
            namespaces.append({"type": kind, "path": path})
    mounts = default_mounts(sandbox, shm_source, privileged, host_network=sandbox.netns_path is None)
    for m in config.mounts:
        options = ["rbind", "rprivate", "ro" if m.read_only else "rw"]
        mounts.append(_mount(m.container_path, "bind", m.host_path, options))
    resources: dict = {"devices": [{"allow": privileged, "access": "rwm"}]}
    memory = {}
    if config.memory_limit_bytes:
        memory = {"limit": config.memory_limit_bytes}
        if swap_accounting:         # swap = limit: no swap on top of the memory limit, as the kubelet wants
            memory["swap"] = config.memory_limit_bytes
        resources["memory"] = memory
    cpu = {}
    if config.cpu_shares:
        cpu["shares"] = config.cpu_shares
    if config.cpu_quota_us:
        cpu["quota"] = config.cpu_quota_us
        cpu["period"] = config.cpu_period_us or 100000
    if cpu:
        resources["cpu"] = cpu
    linux = {"namespaces": namespaces, "cgroupsPath": cgroups_path, "resources": resources}
    if not privileged:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    spec = {
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": str(rootfs), "readonly": config.read_only_root_filesystem},
        "mounts": mounts,
        "linux": linux,
        "annotations": {k: str(v) for k, v in config.labels.items()},
    }
    return spec
