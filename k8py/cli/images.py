"""`k8py images ls|pull|import|rm`: the node's image store, listed the way `crictl images` does."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from k8py.client.paths import default_data_dir
from k8py.kubelet.images.reference import split_repo_tag
from k8py.kubelet.runtime.interface import ImageError


def add_parser(sub) -> None:
    parser = sub.add_parser("images", help="list, pull, import and remove node images")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the agent's data dir (default: <k8py data dir>/agent); images live in <data-dir>/images")
    parser.add_argument("--registry-config", type=Path, default=None,
                        help="registries.yaml with mirrors (default: <data-dir>/registries.yaml)")
    actions = parser.add_subparsers(dest="images_command", required=True)
    ls = actions.add_parser("ls", aliases=["list"], help="list images")
    ls.add_argument("-q", "--quiet", action="store_true", help="only image ids")
    ls.add_argument("--digests", action="store_true", help="show digests")
    ls.add_argument("--no-trunc", action="store_true", help="full image ids")
    pull = actions.add_parser("pull", help="pull an image from its registry (or a mirror)")
    pull.add_argument("reference")
    imp = actions.add_parser("import", help="import a docker/OCI archive, or a root filesystem folder")
    imp.add_argument("source", type=Path)
    imp.add_argument("--name", help="reference to tag the image with (required for a folder)")
    rm = actions.add_parser("rm", aliases=["rmi"], help="remove images")
    rm.add_argument("references", nargs="+")


def human_size(size: int) -> str:
    """crictl's sizes: 1000-based units, three significant digits."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.4g}{unit}" if unit != "B" else f"{int(value)}B"
        value /= 1000
    return f"{size}B"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _ls(store, args) -> int:
    images = sorted(store.list(), key=lambda i: (i.repo_tags or [""])[0])
    if args.quiet:
        for info in images:
            print(info.id)
        return 0
    header = ["IMAGE", "TAG"] + (["DIGEST"] if args.digests else []) + ["IMAGE ID", "SIZE"]
    rows = [header]
    for info in images:
        image_id = info.id if args.no_trunc else info.id[7:20]
        digest = (info.repo_digests[0].split("@")[1][7:20] if info.repo_digests else "<none>")
        for tag in info.repo_tags or ["<none>:<none>"]:
            repo, tagname = split_repo_tag(tag) if tag != "<none>:<none>" else ("<none>", "<none>")
            rows.append([repo, tagname] + ([digest] if args.digests else []) + [image_id, human_size(info.size)])
    print(_table(rows))
    return 0


def containers_using(data_dir: Path, image_id: str) -> list[str]:
    """Containers of the agent's runc runtime (<data-dir>/runc) whose root filesystem is this image."""
    found = []
    for meta in sorted((data_dir / "runc" / "containers").glob("*/meta.json")):
        try:
            if json.loads(meta.read_text()).get("image_id") == image_id:
                found.append(meta.parent.name)
        except (OSError, ValueError):
            continue
    return found


def run(args) -> int:
    from k8py.kubelet.images.archive import import_archive, import_rootfs
    from k8py.kubelet.images.store import ImageStore

    data_dir = args.data_dir or default_data_dir() / "agent"
    mirrors = args.registry_config or (data_dir / "registries.yaml")
    try:
        # The same store the agent opens (k8py/kubelet/wiring.py): <agent data dir>/images.
        store = ImageStore(data_dir / "images", mirrors if mirrors.exists() else None)
        if args.images_command in ("ls", "list"):
            return _ls(store, args)
        if args.images_command == "pull":
            info = asyncio.run(store.pull(args.reference))
            print(f"Image is up to date for {info.id}")
            return 0
        if args.images_command == "import":
            if args.source.is_dir():
                if not args.name:
                    print("k8py images import: --name is required for a folder", file=sys.stderr)
                    return 2
                infos = [import_rootfs(store, args.source, args.name)]
            else:
                infos = import_archive(store, args.source, args.name)
            for info in infos:
                print(f"imported {', '.join(info.repo_tags) or '<untagged>'} {info.id}")
            return 0
        status = 0
        for ref in args.references:
            info = store.get(ref)
            if info is None:
                print(f'k8py images rm: no such image "{ref}"', file=sys.stderr)
                status = 1
                continue
            users = containers_using(data_dir, info.id)
            if users and len(info.repo_tags) <= 1:
                print(f'k8py images rm: image "{ref}" is in use by container {users[0]}', file=sys.stderr)
                status = 1
                continue
            store.remove(ref)
            print(f"Deleted: {ref}")
        return status
    except ImageError as exc:
        print(f"k8py images: {exc.reason}: {exc.message}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"k8py images: {exc}", file=sys.stderr)
        return 1
