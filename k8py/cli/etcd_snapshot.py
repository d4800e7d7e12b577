"""`k8py etcd-snapshot save|ls|delete|prune`: datastore snapshots, as `k3s etcd-snapshot`.

Runs on the server machine against the data dir (the server may be running:
a save is consistent while it writes). Snapshots live in
`<data-dir>/server/db/snapshots` unless `--etcd-snapshot-dir` says otherwise.
As with k3s, the `--etcd-` prefix of the snapshot flags may be left out here.
Restoring is `k8py server --cluster-reset --cluster-reset-restore-path FILE`.
"""

from __future__ import annotations

import argparse
import datetime
import socket
import sys
from pathlib import Path

from k8py.client.paths import default_data_dir
from k8py.storage import snapshot
from k8py.storage.snapshot_backends import backend_from_args


def _common(p, top: bool = False) -> None:
    """The flags every verb takes. They are accepted before the verb too; the verb's
    parser then leaves them alone (SUPPRESS) unless they are given after it."""
    default = (lambda value: value) if top else (lambda value: argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, default=default(None), help="the server's data dir")
    p.add_argument("--etcd-snapshot-dir", "--dir", dest="snapshot_dir", type=Path, default=default(None),
                   help="where snapshots are kept (default <data-dir>/server/db/snapshots)")
    p.add_argument("--datastore-endpoint", default=default(""),
                   help="as given to the server (empty = embedded SQLite, or the --cluster-init etcd "
                        "if the data dir has one)")
    p.add_argument("--datastore-cafile", type=Path, default=default(None), help="as given to the server")
    p.add_argument("--datastore-certfile", type=Path, default=default(None), help="as given to the server")
    p.add_argument("--datastore-keyfile", type=Path, default=default(None), help="as given to the server")
    p.add_argument("--node-name", default=default(None),
                   help="the node name in snapshot names (default: the hostname)")
    p.add_argument("--etcd-snapshot-name", "--name", dest="name", default=default(snapshot.DEFAULT_ON_DEMAND_NAME),
                   help="save: base name, the file is <name>-<node>-<unix time>; prune: which snapshots "
                        "(default on-demand)")


def add_parser(sub) -> None:
    p = sub.add_parser("etcd-snapshot", help="save, list, delete and prune datastore snapshots")
    _common(p, top=True)
    verbs = p.add_subparsers(dest="verb")
    _common(verbs.add_parser("save", help="take a snapshot now"))
    for alias in ("ls", "list", "l"):
        _common(verbs.add_parser(alias, help="list snapshots"))
    delete = verbs.add_parser("delete", help="delete the named snapshots")
    _common(delete)
    delete.add_argument("names", nargs="+", metavar="NAME")
    prune = verbs.add_parser("prune", help="delete all but the newest --snapshot-retention snapshots of --name")
    _common(prune)
    prune.add_argument("--etcd-snapshot-retention", "--snapshot-retention", dest="retention", type=int,
                       default=snapshot.DEFAULT_RETENTION, help="how many to keep (default 5)")


def run(args) -> int:
    verb = args.verb or "save"  # a bare `etcd-snapshot` saves, as k3s' did
    data_dir = (args.data_dir or default_data_dir()).resolve()
    directory = args.snapshot_dir or snapshot.default_dir(data_dir)
    try:
        if verb == "save":
            return _save(args, data_dir, directory)
        if verb in ("ls", "list", "l"):
            _print_list(snapshot.list_snapshots(directory))
            return 0
        if verb == "delete":
            deleted, missing = snapshot.delete_snapshots(directory, args.names)
            for name in deleted:
                print(f"Snapshot {name} deleted")
            for name in missing:
                print(f"k8py: snapshot {name} not found in {directory}", file=sys.stderr)
            return 1 if missing else 0
        for name in snapshot.prune_snapshots(directory, args.name, args.retention):
            print(f"Snapshot {name} pruned")
        return 0
    except snapshot.SnapshotError as err:
        print(f"k8py: {err}", file=sys.stderr)
        return 1


def _save(args, data_dir: Path, directory: Path) -> int:
    backend = backend_from_args(data_dir, args)
    cluster_id = snapshot.cluster_id_of(snapshot.ca_path(data_dir))
    node = (args.node_name or socket.gethostname()).lower()
    name = snapshot.snapshot_name(args.name, node)
    info = backend.save(directory / name, cluster_id, node)
    print(f"Snapshot {name} saved.", flush=True)
    print(f"  location {info.path.resolve().as_uri()}, revision {info.revision}, {info.keys} keys")
    return 0


def _print_list(snapshots: list[snapshot.SnapshotFile]) -> None:
    """k3s' columns, aligned as Go's tabwriter (padding 1) aligns them."""
    rows = [("Name", "Location", "Size", "Created")]
    for s in snapshots:
        created = datetime.datetime.fromtimestamp(s.created, datetime.timezone.utc).astimezone()
        rows.append((s.name, s.location, str(s.size), _rfc3339(created)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(" ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + " " + row[3])


def _rfc3339(t: datetime.datetime) -> str:
    text = t.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")
