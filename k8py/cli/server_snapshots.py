"""`k8py server`'s snapshot flags, as k3s': scheduled snapshots and `--cluster-reset` restore.

Scheduled snapshots are on by default (k3s: 00:00 and 12:00 system time, five
kept), named `etcd-snapshot-<node>-<unix time>`; after each one, the oldest
scheduled snapshots beyond the retention are pruned (on-demand ones are the
operator's to prune). `--cluster-reset --cluster-reset-restore-path FILE`
restores the datastore from a snapshot instead of serving, then exits telling
the operator to restart without the flags, as k3s does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import socket
import sys
from pathlib import Path

from k8py.client.paths import default_data_dir
from k8py.controllers.cronschedule import Schedule, ScheduleError
from k8py.storage import snapshot
from k8py.storage.snapshot_backends import backend_from_args

log = logging.getLogger("k8py.server.snapshots")


def add_flags(p) -> None:
    p.add_argument("--etcd-disable-snapshots", action="store_true", help="disable scheduled snapshots")
    p.add_argument("--etcd-snapshot-schedule-cron", default=snapshot.DEFAULT_SCHEDULE,
                   help="snapshot interval as a cron spec, in system time (default '0 */12 * * *')")
    p.add_argument("--etcd-snapshot-retention", type=int, default=snapshot.DEFAULT_RETENTION,
                   help="scheduled snapshots to keep (default 5)")
    p.add_argument("--etcd-snapshot-dir", type=Path, default=None,
                   help="where snapshots are kept (default <data-dir>/server/db/snapshots)")
    p.add_argument("--etcd-snapshot-name", default=snapshot.DEFAULT_SCHEDULED_NAME,
                   help="base name of scheduled snapshots (default etcd-snapshot)")
    p.add_argument("--cluster-reset", action="store_true",
                   help="with --cluster-reset-restore-path: restore the datastore from a snapshot, then exit")
    p.add_argument("--cluster-reset-restore-path", type=Path, default=None, help="snapshot file to restore")


def check_flags(args) -> str | None:
    """The error in the snapshot flags, if any (checked before anything starts)."""
    if args.cluster_reset_restore_path and not args.cluster_reset:
        return "invalid flag use; --cluster-reset required with --cluster-reset-restore-path"
    if args.etcd_snapshot_retention < 1:
        return f"--etcd-snapshot-retention must be at least 1, not {args.etcd_snapshot_retention}"
    if not args.etcd_disable_snapshots:
        try:
            Schedule.parse(args.etcd_snapshot_schedule_cron)
        except ScheduleError as err:
            return f"--etcd-snapshot-schedule-cron {args.etcd_snapshot_schedule_cron!r}: {err}"
    return None


def node_name(args) -> str:
    return (args.node_name or socket.gethostname()).lower()


def cluster_reset(args) -> int:
    """`--cluster-reset`: restore the snapshot into the data dir, or change nothing and say why."""
    if args.cluster_reset_restore_path is None:
        print("k8py: --cluster-reset needs --cluster-reset-restore-path: the embedded SQLite datastore has no "
              "members to reset", file=sys.stderr)
        return 1
    data_dir = (args.data_dir or default_data_dir()).resolve()
    try:
        backend = backend_from_args(data_dir, args)
        cluster_id = snapshot.cluster_id_of(snapshot.ca_path(data_dir))
        result = backend.restore(args.cluster_reset_restore_path, cluster_id)
    except snapshot.SnapshotError as err:
        print(f"k8py: restore refused, nothing was changed: {err}", file=sys.stderr)
        return 1
    info = result.snapshot
    print(f"k8py: datastore restored from {info.path} ({info.keys} keys, taken at revision {info.revision}); "
          f"resourceVersions continue above {result.revision}", flush=True)
    if result.old_data:
        print(f"k8py: the replaced datastore was moved to {result.old_data}", flush=True)
    print("k8py: Managed etcd cluster membership has been reset, restart without --cluster-reset flag now.",
          flush=True)
    return 0


def _schedule(expression: str) -> Schedule:
    """The cron spec in system time, as k3s reads it."""
    local = datetime.datetime.now().astimezone().tzinfo
    return dataclasses.replace(Schedule.parse(expression), zone=local)


async def run_scheduled(args, data_dir: Path) -> None:
    """Take a snapshot at every activation of the schedule, then prune to the retention."""
    schedule = _schedule(args.etcd_snapshot_schedule_cron)
    directory = args.etcd_snapshot_dir or snapshot.default_dir(data_dir)
    backend = backend_from_args(data_dir, args)
    node = node_name(args)
    while True:
        now = datetime.datetime.now(datetime.timezone.utc)
        await asyncio.sleep(max(0.0, (schedule.next(now) - now).total_seconds()))
        try:
            cluster_id = snapshot.cluster_id_of(snapshot.ca_path(data_dir))
            name = snapshot.snapshot_name(args.etcd_snapshot_name, node)
            info = await asyncio.to_thread(backend.save, directory / name, cluster_id, node)
            log.info("scheduled snapshot %s saved (revision %d, %d keys)", name, info.revision, info.keys)
            pruned = await asyncio.to_thread(snapshot.prune_snapshots, directory, args.etcd_snapshot_name,
                                             args.etcd_snapshot_retention)
            for old in pruned:
                log.info("snapshot %s pruned (retention %d)", old, args.etcd_snapshot_retention)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failed snapshot (disk full, ...) must not take the server down
            log.exception("scheduled snapshot failed")


def start_scheduled(args, data_dir: Path) -> asyncio.Task | None:
    if args.etcd_disable_snapshots:
        return None
    try:
        backend_from_args(data_dir, args)
    except snapshot.SnapshotError as err:
        log.warning("scheduled snapshots are off: %s", err)
        return None
    return asyncio.create_task(run_scheduled(args, data_dir), name="etcd-snapshot-schedule")
