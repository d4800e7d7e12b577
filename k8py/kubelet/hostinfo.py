"""Facts about this host the node reports: capacity, system info, addresses, pressure."""

from __future__ import annotations

import os
import platform
import socket
from fractions import Fraction
from pathlib import Path

from k8py.apimachinery import quantity

ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}

# The kubelet's default hard eviction thresholds, taken out of allocatable.
EVICTION_MEMORY_BYTES = 100 * 2**20
EVICTION_NODEFS_FRACTION = 0.10
MAX_PODS = 110


def arch() -> str:
    machine = platform.machine()
    return ARCH.get(machine, machine)


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts:
                out[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    except OSError:
        pass
    return out


def disk_bytes(path: Path) -> tuple[int, int]:
    """(total, available) bytes of the filesystem holding `path`."""
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize


def capacity(data_dir: Path, max_pods: int = MAX_PODS) -> tuple[dict, dict]:
    """(capacity, allocatable) as the kubelet reports them: byte counts are BinarySI
    quantities, and allocatable is capacity less the eviction thresholds, subtracted
    as resource.Quantity does (so it prints `15876Mi`, `94580216Ki`, as upstream's)."""
    mem_total = meminfo().get("MemTotal", 0)
    disk_total, _ = disk_bytes(data_dir)
    cpus = os.cpu_count() or 1
    memory, disk = _bytes(mem_total), _bytes(disk_total)
    cap = {"cpu": str(cpus), "ephemeral-storage": quantity.canonical(disk),
           "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": quantity.canonical(memory), "pods": str(max_pods)}
    alloc = dict(cap)
    alloc["memory"] = quantity.canonical(_at_least_zero(quantity.subtract(memory, _bytes(EVICTION_MEMORY_BYTES))))
    reserved_disk = _bytes(int(EVICTION_NODEFS_FRACTION * disk_total))
    alloc["ephemeral-storage"] = quantity.canonical(_at_least_zero(quantity.subtract(disk, reserved_disk)))
    return cap, alloc


def _bytes(n: int) -> quantity.Quantity:
    return quantity.Quantity(Fraction(n), quantity.BINARY_SI)


def _at_least_zero(q: quantity.Quantity) -> quantity.Quantity:
    return q if q.value > 0 else quantity.Quantity(Fraction(0), q.format)


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def system_info(runtime_version: str, kubelet_version: str) -> dict:
    machine_id = _read("/etc/machine-id")
    return {
        "machineID": machine_id,
        "systemUUID": _read("/sys/class/dmi/id/product_uuid", machine_id),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(),
        "osImage": os_image(),
        "containerRuntimeVersion": runtime_version,
        "kubeletVersion": kubelet_version,
        "kubeProxyVersion": kubelet_version,
        "operatingSystem": "linux",
        "architecture": arch(),
    }


def node_ip(server_host: str | None = None) -> str:
    """The address other hosts and pods reach us on: the source address of the route
    towards the API server, or of the default route when that is loopback (a server on
    127.0.0.1); loopback only when there is nothing else. No packet is sent."""
    for target in (server_host, "10.255.255.255"):
        if not target:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))
                addr = s.getsockname()[0]
        except OSError:
            continue
        if addr and not addr.startswith("127."):
            return addr
    return "127.0.0.1"


def pressure(data_dir: Path) -> dict[str, bool]:
    """Which of memory, disk and PID pressure the eviction thresholds say we are under."""
    mem = meminfo()
    total, avail = disk_bytes(data_dir)
    try:
        pid_max = int(_read("/proc/sys/kernel/pid_max", "32768"))
        running = sum(1 for p in os.listdir("/proc") if p.isdigit())
    except OSError:
        pid_max, running = 32768, 0
    return {
        "MemoryPressure": bool(mem) and mem.get("MemAvailable", mem.get("MemFree", 0)) < EVICTION_MEMORY_BYTES,
        "DiskPressure": total > 0 and avail < total * EVICTION_NODEFS_FRACTION,
        "PIDPressure": running > pid_max * 0.9,
    }
