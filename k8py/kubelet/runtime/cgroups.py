"""cgroup paths, stats and clean-up for cgroup v1 (one hierarchy per controller) and v2."""

from __future__ import annotations

import os
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio", "devices", "freezer", "hugetlb",
                  "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd", "unified")


def is_v2() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def controller_dirs(path: str) -> list[Path]:
    """Every directory a cgroup path names: one per mounted v1 controller, or one on v2."""
    rel = path.strip("/")
    if is_v2():
        return [CGROUP_ROOT / rel]
    dirs = []
    for ctrl in V1_CONTROLLERS:
        base = CGROUP_ROOT / ctrl
        if base.is_dir() and not base.is_symlink():
            dirs.append(base / rel)
    return dirs


def swap_accounting() -> bool:
    """Whether a memory+swap limit can be set (v1 needs swapaccount; v2 needs the swap files)."""
    if is_v2():
        return any((CGROUP_ROOT / d / "memory.swap.max").exists() for d in ("init.scope", "system.slice", "user.slice"))
    return (CGROUP_ROOT / "memory" / "memory.memsw.limit_in_bytes").exists()


def oom_files(path: str) -> list[str]:
    rel = path.strip("/")
    if is_v2():
        return [str(CGROUP_ROOT / rel / "memory.events")]
    return [str(CGROUP_ROOT / "memory" / rel / "memory.oom_control")]


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _stat_field(text: str | None, key: str) -> int:
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def usage(path: str) -> dict | None:
    """CPU and memory of a cgroup, or None if it is gone: cpu_ns (cumulative), usage, working_set
    (usage minus inactive file pages, as cAdvisor counts it), rss, page_faults, major_page_faults."""
    rel = path.strip("/")
    if is_v2():
        base = CGROUP_ROOT / rel
        cpu, mem = _read(base / "cpu.stat"), _read(base / "memory.current")
        if cpu is None or mem is None:
            return None
        stat = _read(base / "memory.stat")
        return _memory(_stat_field(cpu, "usage_usec") * 1000, int(mem), stat, "", "anon")
    cpu = _read(CGROUP_ROOT / "cpuacct" / rel / "cpuacct.usage")
    mem = _read(CGROUP_ROOT / "memory" / rel / "memory.usage_in_bytes")
    if cpu is None or mem is None:
        return None
    stat = _read(CGROUP_ROOT / "memory" / rel / "memory.stat")
    return _memory(int(cpu), int(mem), stat, "total_", "total_rss")


def _memory(cpu_ns: int, usage_bytes: int, stat: str | None, prefix: str, rss_key: str) -> dict:
    inactive = _stat_field(stat, prefix + "inactive_file")
    return {"cpu_ns": cpu_ns, "usage": usage_bytes, "working_set": max(0, usage_bytes - inactive),
            "rss": _stat_field(stat, rss_key), "page_faults": _stat_field(stat, prefix + "pgfault"),
            "major_page_faults": _stat_field(stat, prefix + "pgmajfault")}


def pids_in(path: str) -> list[int]:
    found: set[int] = set()
    for d in controller_dirs(path):
        for dirpath, _, files in os.walk(d):
            if "cgroup.procs" in files:
                for line in (_read(Path(dirpath) / "cgroup.procs") or "").split():
                    found.add(int(line))
    return sorted(found)


def remove(path: str, timeout: float = 5.0) -> None:
    """rmdir the cgroup (children first) in every hierarchy; a cgroup empties a moment after its last process."""
    deadline = time.monotonic() + timeout
    for d in controller_dirs(path):
        if not d.exists():
            continue
        subdirs = sorted((Path(p) for p, _, _ in os.walk(d)), key=lambda p: len(p.parts), reverse=True)
        for sub in subdirs:
            while True:
                try:
                    sub.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
