"""Subdirectories of a shared folder (nfs-subdir-external-provisioner's pattern;
component `shared-folder`).

The operator names each provisioner the server serves and where its share is
mounted on the server's host, with `--shared-folder-provisioner
NAME=PATH[,nfs=SERVER:/EXPORT]` (repeatable), e.g. `fuseim.pri/ifs=/srv/share`
for the seed's `course-nfs-storage` class. Each volume is the subdirectory
`<namespace>-<claim>-<pv name>` of PATH; the PV is a hostPath volume on it, or,
when the share is the NFS export `nfs=SERVER:/EXPORT` mounted at PATH, an nfs
volume `SERVER:/EXPORT/<subdirectory>`.

Deleting a Delete-policy volume: the class's `onDelete` parameter (`delete` or
`retain`) wins; else `archiveOnDelete: "false"` removes the subdirectory, and
anything else (the default too) renames it `archived-<subdirectory>`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from k8py.provisioners.controller import ProvisionController, ProvisioningError, ProvisionOptions, base_volume
from k8py.provisioners.folders import make_directory, remove_directory, rename_directory

log = logging.getLogger("k8py.provisioners.shared_folder")

FLAG = "--shared-folder-provisioner"
ARCHIVE_PREFIX = "archived-"
TRUE_WORDS = {"1", "t", "T", "TRUE", "true", "True"}
FALSE_WORDS = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class Share:
    provisioner: str
    path: Path
    nfs_server: str = ""
    nfs_path: str = ""


def parse_share(text: str) -> Share:
    """`NAME=PATH[,nfs=SERVER:/EXPORT]` -> Share (argparse type: errors are ArgumentTypeError)."""
    name, sep, rest = text.partition("=")
    path, _, option = rest.partition(",")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH[,nfs=SERVER:/EXPORT], got {text!r}")
    if not os.path.isabs(path):
        raise argparse.ArgumentTypeError(f"the share's path must be absolute, got {path!r}")
    server = export = ""
    if option:
        key, _, value = option.partition("=")
        server, _, export = value.partition(":")
        if key != "nfs" or not server or not export.startswith("/"):
            raise argparse.ArgumentTypeError(f"expected nfs=SERVER:/EXPORT after the path, got {option!r}")
    return Share(name, Path(os.path.normpath(path)), server, (export.rstrip("/") or "/") if server else "")


def subdirectory_name(options: ProvisionOptions) -> str:
    meta = options.claim["metadata"]
    return "-".join([meta.get("namespace", ""), meta["name"], options.pv_name])


def _parse_bool(text: str) -> bool:
    """Go's strconv.ParseBool, which the upstream provisioner uses."""
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ProvisioningError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def delete_action(parameters: dict) -> str:
    """What deleting a volume does to its subdirectory: "delete", "retain" or "archive"."""
    on_delete = parameters.get("onDelete")
    if on_delete in ("delete", "retain"):
        return on_delete
    if "archiveOnDelete" in parameters and not _parse_bool(parameters["archiveOnDelete"]):
        return "delete"
    return "archive"


class SharedFolderProvisioner:
    def __init__(self, share: Share):
        self.share = share
        self.name = share.provisioner

    async def provision(self, options: ProvisionOptions) -> dict:
        subdirectory = subdirectory_name(options)
        path = self.share.path / subdirectory
        await asyncio.to_thread(make_directory, str(path))
        volume = base_volume(options, self.name)
        if self.share.nfs_server:
            volume["spec"]["nfs"] = {"server": self.share.nfs_server,
                                     "path": os.path.join(self.share.nfs_path, subdirectory), "readOnly": False}
        else:
            volume["spec"]["hostPath"] = {"path": str(path), "type": "DirectoryOrCreate"}
        return volume

    def local_path(self, volume: dict) -> Path:
        """Where the volume's subdirectory is on this host (an nfs path maps into the mount)."""
        spec = volume.get("spec") or {}
        path = (spec.get("nfs") or spec.get("hostPath") or {}).get("path") or ""
        path = os.path.normpath(path)
        if self.share.nfs_server and spec.get("nfs"):
            base = os.path.normpath(self.share.nfs_path)
        else:
            base = str(self.share.path)
        if os.path.dirname(path) != base:
            raise ProvisioningError(f"volume path {path} is not a subdirectory of the share {base}")
        return self.share.path / os.path.basename(path)

    async def delete(self, volume: dict, storage_class: dict | None) -> None:
        path = self.local_path(volume)
        if not path.exists():
            log.warning("path %s does not exist, deletion skipped", path)
            return
        action = delete_action((storage_class or {}).get("parameters") or {})
        if action == "delete":
            await asyncio.to_thread(remove_directory, str(path))
        elif action == "archive":
            await asyncio.to_thread(rename_directory, str(path), str(path.parent / (ARCHIVE_PREFIX + path.name)))


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(FLAG, action="append", default=[], type=parse_share, dest="shared_folders",
                        metavar="NAME=PATH[,nfs=SERVER:/EXPORT]",
                        help="serve the volume provisioner NAME with subdirectories of the share at PATH (repeatable)")


async def run_in_server(args, client) -> None:
    shares = getattr(args, "shared_folders", None) or []
    if not shares:
        await asyncio.Event().wait()  # nothing to serve; stay until the server stops
    controllers = [ProvisionController(client, SharedFolderProvisioner(share)) for share in shares]
    await asyncio.gather(*(c.run() for c in controllers))
