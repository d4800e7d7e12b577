"""What this machine uses, read from /proc and statvfs: the node-level figures of
the Summary API and /metrics/resource (cAdvisor's root container, upstream).
Each function is cheap enough to call on every scrape.
"""

from __future__ import annotations

import os

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_ns() -> int:
    """CPU time the machine spent busy since boot (all but idle and iowait), in nanoseconds."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    values = [int(v) for v in fields[:8]] + [0] * max(0, 8 - len(fields))
    busy = sum(values) - values[3] - values[4]
    return busy * 1_000_000_000 // _HZ


def _kv_file(path: str, scale: int = 1) -> dict[str, int]:
    found = {}
    try:
        with open(path) as f:
            for line in f:
                key, _, rest = line.replace(":", " ", 1).partition(" ")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    found[key] = int(parts[0]) * scale
    except OSError:
        pass
    return found


def memory() -> dict:
    """usage (total - free), working_set (usage - inactive file), available, rss (anonymous pages), faults."""
    info = _kv_file("/proc/meminfo", 1024)
    vm = _kv_file("/proc/vmstat")
    total = info.get("MemTotal", 0)
    usage = total - info.get("MemFree", 0)
    working_set = max(0, usage - info.get("Inactive(file)", 0))
    return {"usage": usage, "working_set": working_set, "available": max(0, total - working_set),
            "rss": info.get("AnonPages", 0), "page_faults": vm.get("pgfault", 0),
            "major_page_faults": vm.get("pgmajfault", 0)}


def boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def network(pid: int | str = "self") -> list[dict]:
    """Per-interface counters of the network namespace `pid` is in (lo left out), as
    [{name, rxBytes, rxErrors, txBytes, txErrors}]; [] when the process is gone."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return []
    interfaces = []
    for line in lines:
        name, _, counters = line.partition(":")
        name, values = name.strip(), counters.split()
        if name == "lo" or len(values) < 11:
            continue
        interfaces.append({"name": name, "rxBytes": int(values[0]), "rxErrors": int(values[2]),
                           "txBytes": int(values[8]), "txErrors": int(values[10])})
    return interfaces


def default_interface() -> str:
    """The interface of the default route (what the Summary API names the node's network by)."""
    try:
        with open("/proc/net/route") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if len(fields) > 1 and fields[1] == "00000000":
                    return fields[0]
    except OSError:
        pass
    return "eth0"


def filesystem(path: str) -> dict:
    """FsStats of the filesystem holding `path`: capacity, available, used and inodes."""
    try:
        st = os.statvfs(path)
    except OSError:
        return {}
    return {"availableBytes": st.f_bavail * st.f_frsize, "capacityBytes": st.f_blocks * st.f_frsize,
            "usedBytes": (st.f_blocks - st.f_bfree) * st.f_frsize, "inodesFree": st.f_ffree,
            "inodes": st.f_files, "inodesUsed": st.f_files - st.f_ffree}


def process_limits() -> dict:
    """RlimitStats: the pid limit and how many processes run now."""
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            maxpid = int(f.read())
    except (OSError, ValueError):
        maxpid = 0
    try:
        curproc = sum(1 for name in os.listdir("/proc") if name.isdigit())
    except OSError:
        curproc = 0
    return {"maxpid": maxpid, "curproc": curproc}


def tree_usage(path: str) -> tuple[int, int]:
    """(bytes, inodes) under a directory, as `du` counts them (a container's writable layer)."""
    used = inodes = 0
    for dirpath, dirnames, filenames in os.walk(path):
        inodes += 1 + len(filenames)
        for name in filenames:
            try:
                used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return used, inodes
