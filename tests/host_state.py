"""What the suite may change on the host, read before and after it runs.

tests/conftest.py snapshots the root network namespace and mount table when
the suite starts and fails the run when anything of ours is left at its end:
iptables chains and rules (all tables), links (bridges, veths), routes,
network namespaces, mounts, runc containers, and processes the suite started
(found by an environment marker every child inherits, or by descent).
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

COUNTERS = re.compile(r" \[\d+:\d+\]$")
# A built-in chain with the default policy: it appears whenever its table is first used (a
# fresh namespace has no nat table until something lists it) and is no change to undo.
DEFAULT_POLICY = re.compile(r"^:[A-Z]+ ACCEPT$")
# Folders under a runc root's tree that hold image or container files, never a runc root.
NOT_RUNC_ROOTS = {"blobs", "snapshots", "rootfs", "fs", "tmp", "ns", "shm"}


def _lines(*argv: str) -> list[str]:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.splitlines() if out.returncode == 0 else []


def iptables_lines(save_output: list[str], family: str = "") -> set[str]:
    """`<family>iptables-save` as comparable lines: `table: rule or chain`, counters dropped."""
    result, table = set(), ""
    for line in save_output:
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith((":", "-")):
            line = COUNTERS.sub("", line)
            if not DEFAULT_POLICY.match(line):
                result.add(f"{family}{table}: {line}")
    return result


def links(output: list[str]) -> dict[str, str]:
    """`ip -o -d link show` as name -> kind (bridge, veth, ...; "" for a plain device)."""
    found = {}
    for line in output:
        parts = line.split(": ", 2)
        if len(parts) < 3:
            continue
        name = parts[1].split("@", 1)[0]
        kind = re.search(r"\\\s+(bridge|veth|vxlan|dummy|macvlan|ipvlan|tun|bond|vlan|ifb)\b", parts[2])
        found[name] = kind.group(1) if kind else ""
    return found


def mount_points() -> set[str]:
    try:
        with open("/proc/self/mountinfo") as f:
            return {line.split()[4] for line in f if len(line.split()) > 4}
    except OSError:
        return set()


def runc_roots(under: list[Path]) -> set[Path]:
    """Runc state roots: the default one and any in the suite's own folders (a folder
    whose entries hold a state.json)."""
    roots = {Path("/run/runc")}
    for top in under:
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in NOT_RUNC_ROOTS]
            if "state.json" in files:
                roots.add(Path(folder).parent)
                dirs[:] = []
    return roots


def runc_containers(roots: set[Path]) -> set[str]:
    found = set()
    for root in roots:
        if root.is_dir():
            found |= {f"{root}: {cid}" for cid in _lines("runc", "--root", str(root), "list", "-q") if cid}
    return found


@dataclass
class HostState:
    iptables: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    routes: set[str] = field(default_factory=set)
    netns: set[str] = field(default_factory=set)
    mounts: set[str] = field(default_factory=set)
    runc: set[str] = field(default_factory=set)


def snapshot(own_dirs: list[Path]) -> HostState:
    return HostState(
        iptables=iptables_lines(_lines("iptables-save")) | iptables_lines(_lines("ip6tables-save"), "ip6 "),
        links=links(_lines("ip", "-o", "-d", "link", "show")),
        routes=set(_lines("ip", "route", "show", "table", "all")) | set(_lines("ip", "-6", "route", "show", "table",
                                                                               "all")),
        netns={line.split()[0] for line in _lines("ip", "netns", "list") if line.strip()},
        mounts=mount_points(),
        runc=runc_containers(runc_roots(own_dirs)))


def _proc_tree() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state) of every live process."""
    tree = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            tree[int(entry)] = (int(fields[1]), fields[0])
    return tree


def our_processes(marker: str, value: str, me: int | None = None) -> list[str]:
    """Live processes the suite started: they carry `marker=value` in their environment
    (inherited from the test process) or descend from it. Zombies are not counted."""
    me = me or os.getpid()
    tree = _proc_tree()
    needle = f"{marker}={value}".encode()
    found = []
    for pid, (_, state) in tree.items():
        if pid == me or state == "Z":
            continue
        ancestor, descends = pid, False
        for _ in range(64):
            ancestor = tree.get(ancestor, (0, ""))[0]
            if ancestor in (0, 1) or ancestor == me:
                descends = ancestor == me
                break
        try:
            marked = needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            marked = False
        if descends or marked:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                cmd = "?"
            found.append(f"pid {pid}: {cmd.strip()[:200]}")
    return found


def leftovers(before: HostState, after: HostState, own_dirs: list[Path], other_sessions: Path | None = None
              ) -> list[str]:
    """What differs at the end, as one line each. Mounts count when they are under our own
    folders or new anywhere else (but not in another pytest session's folders)."""
    found = [f"iptables rule or chain left: {line}" for line in sorted(after.iptables - before.iptables)]
    found += [f"iptables rule or chain removed: {line}" for line in sorted(before.iptables - after.iptables)]
    found += [f"link left: {name} ({kind or 'device'})" for name, kind in sorted(after.links.items())
              if name not in before.links]
    found += [f"route left: {line}" for line in sorted(after.routes - before.routes)]
    found += [f"route removed: {line}" for line in sorted(before.routes - after.routes)]
    found += [f"network namespace left: {name}" for name in sorted(after.netns - before.netns)]
    own = [str(d) + "/" for d in own_dirs]
    others = str(other_sessions) + "/" if other_sessions else None

    def ours(point: str) -> bool:
        if any(point.startswith(o) for o in own):
            return True
        if point in before.mounts or point.startswith("/run/netns/"):
            return False
        return not (others and point.startswith(others))
    found += [f"mount left: {point}" for point in sorted(after.mounts) if ours(point)]
    found += [f"runc container left: {c}" for c in sorted(after.runc - before.runc)]
    return found
