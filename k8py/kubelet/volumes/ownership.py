"""securityContext.fsGroup on a volume, as upstream's SetVolumeOwnership.

Every file and folder in the volume gets the fsGroup as its group and the
group permissions its owner has (read, plus write unless the volume is
mounted read-only, plus execute/search where the owner has it); folders get
the setgid bit, so files made later inherit the group. With
`fsGroupChangePolicy: OnRootMismatch` the walk is skipped when the volume's
root already has the group and those permissions (upstream's shortcut for
big volumes). Applied to emptyDir and `local` volumes, not to hostPath or
nfs ones, as upstream (those plugins don't manage ownership).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

READ_WRITE_GROUP = stat.S_IRGRP | stat.S_IWGRP
READ_ONLY_GROUP = stat.S_IRGRP
EXEC_GROUP = stat.S_IXGRP


def fs_group(pod: dict) -> tuple[int | None, str]:
    sc = (pod.get("spec") or {}).get("securityContext") or {}
    group = sc.get("fsGroup")
    return (int(group) if group is not None else None), sc.get("fsGroupChangePolicy") or "Always"


def _wanted_mode(mode: int, read_only: bool, is_dir: bool) -> int:
    wanted = mode | (READ_ONLY_GROUP if read_only else READ_WRITE_GROUP)
    if is_dir or mode & stat.S_IXUSR:
        wanted |= EXEC_GROUP
    if is_dir:
        wanted |= stat.S_ISGID
    return wanted


def _root_matches(root: Path, group: int, read_only: bool) -> bool:
    st = os.stat(root)
    mode = stat.S_IMODE(st.st_mode)
    return st.st_gid == group and _wanted_mode(mode, read_only, True) == mode


def apply(pod: dict, root: Path, read_only: bool = False) -> None:
    group, policy = fs_group(pod)
    if group is None:
        return
    if policy == "OnRootMismatch" and _root_matches(root, group, read_only):
        return
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [None, *dirnames, *filenames]:
            path = dirpath if name is None else os.path.join(dirpath, name)
            if name is not None and name in dirnames and os.path.islink(path):
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                os.lchown(path, -1, group)
                continue
            if st.st_gid != group:
                os.chown(path, -1, group)
            mode = stat.S_IMODE(st.st_mode)
            wanted = _wanted_mode(mode, read_only, stat.S_ISDIR(st.st_mode))
            if wanted != mode:
                os.chmod(path, wanted)
