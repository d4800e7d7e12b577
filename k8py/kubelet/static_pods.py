"""Static pods: Pod manifests in a folder (--pod-manifest-path), run without the API.

The folder is rescanned every second. Each pod is named `<name>-<node>` and
its uid is a hash of the manifest, so a changed file is a new pod. The API
gets a mirror pod (annotation kubernetes.io/config.mirror) showing the static
pod's status; if someone deletes the mirror, the kubelet removes it at once
(whatever its grace period: the static pod keeps running) and creates a new
one (a new UID) shortly after.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
from pathlib import Path

import orjson
import yaml

from k8py.apimachinery import meta

log = logging.getLogger("k8py.kubelet.static")

MIRROR = "kubernetes.io/config.mirror"
HASH = "kubernetes.io/config.hash"
SEEN = "kubernetes.io/config.seen"
SOURCE = "kubernetes.io/config.source"
SCAN_SECONDS = 1.0
# A deleted mirror pod is made anew after this long, not at once: `kubectl delete` reads the
# pod, then lists and watches it to see it go; a new mirror under the same name appearing
# between the read and the list would hide the deletion from it, and it would wait in vain.
MIRROR_RECREATE_DELAY = 1.0
SUFFIXES = (".yaml", ".yml", ".json")


def load_manifest(path: Path, node_name: str) -> dict | None:
    """The static pod a manifest file describes, or None when it isn't one."""
    try:
        raw = path.read_bytes()
        doc = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as e:
        log.warning("static pod %s: can't read: %s", path, e)
        return None
    if not isinstance(doc, dict) or doc.get("kind") != "Pod" or not (doc.get("metadata") or {}).get("name"):
        log.warning("static pod %s: not a Pod manifest", path)
        return None
    pod = copy.deepcopy(doc)
    m = pod.setdefault("metadata", {})
    m["name"] = f"{m['name']}-{node_name}"
    m.setdefault("namespace", "default")
    digest = hashlib.md5(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) + node_name.encode() +
                         str(path).encode()).hexdigest()
    m["uid"] = digest
    annotations = m.setdefault("annotations", {})
    annotations.update({HASH: digest, SEEN: meta.rfc3339_micro(), SOURCE: "file"})
    spec = pod.setdefault("spec", {})
    spec["nodeName"] = node_name
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("enableServiceLinks", True)
    pod.setdefault("apiVersion", "v1")
    pod["kind"] = "Pod"
    pod.setdefault("status", {})
    return pod


def mirror_of(pod: dict, node: dict | None) -> dict:
    mirror = copy.deepcopy(pod)
    m = mirror["metadata"]
    m.pop("uid", None)
    m.pop("resourceVersion", None)
    m["annotations"] = {**(m.get("annotations") or {}), MIRROR: m["annotations"][HASH]}
    if node is not None:
        m["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node["metadata"]["name"],
                                 "uid": node["metadata"]["uid"], "controller": True}]
    mirror.pop("status", None)
    return mirror


class StaticPods:
    def __init__(self, kubelet, folder: Path):
        self.kubelet = kubelet
        self.folder = Path(folder)
        self.pods: dict[str, dict] = {}          # file path -> static pod
        self._mtimes: dict[str, tuple[float, int]] = {}
        self._task: asyncio.Task | None = None
        self._mirror_tasks: set[asyncio.Task] = set()    # held: the loop keeps only weak references

    @property
    def node_name(self) -> str:
        return self.kubelet.config.node_name

    def _pods_api(self, namespace: str):
        return self.kubelet.client.resource("v1", "pods", namespace=namespace)

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        await self.scan()
        await self._remove_orphaned_mirrors()
        self._task = asyncio.create_task(self._loop(), name="static pods")

    async def _remove_orphaned_mirrors(self) -> None:
        """Mirrors the pod watch listed before this started (their events went unheard) whose static
        pod is gone, e.g. removed while the agent was down: delete them (upstream's pod cleanups)."""
        informer = getattr(self.kubelet, "informer", None)
        for mirror in list(informer.list()) if informer is not None else []:
            m = mirror["metadata"]
            if MIRROR not in (m.get("annotations") or {}):
                continue
            pod = self._static_by_name(m.get("namespace", "default"), m["name"])
            if pod is None or m["annotations"][MIRROR] != pod["metadata"]["annotations"][HASH] or \
                    m.get("deletionTimestamp"):
                await self._resync_mirror(mirror, pod)

    async def stop(self) -> None:
        tasks = list(self._mirror_tasks) + ([self._task] if self._task is not None else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(SCAN_SECONDS)
            try:
                await self.scan()
            except Exception:
                log.exception("scanning %s failed", self.folder)

    async def scan(self) -> None:
        seen = set()
        for path in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
            if path.name.startswith(".") or path.suffix not in SUFFIXES or not path.is_file():
                continue
            key = str(path)
            seen.add(key)
            st = path.stat()
            stamp = (st.st_mtime, st.st_size)
            if self._mtimes.get(key) == stamp and key in self.pods:
                continue
            self._mtimes[key] = stamp
            pod = load_manifest(path, self.node_name)
            old = self.pods.get(key)
            if pod is None:
                continue
            if old is not None and old["metadata"]["uid"] == pod["metadata"]["uid"]:
                continue
            if old is not None:
                await self._remove(key)
            await self._add(key, pod)
        for key in list(self.pods):
            if key not in seen:
                self._mtimes.pop(key, None)
                await self._remove(key)

    async def _add(self, key: str, pod: dict) -> None:
        self.pods[key] = pod
        log.info("static pod %s from %s", pod["metadata"]["name"], key)
        inventory = await self.kubelet._runtime_inventory()
        self.kubelet.start_worker(pod, adopted=inventory.get(pod["metadata"]["uid"]), static=True)
        await self._ensure_mirror(pod)

    async def _remove(self, key: str) -> None:
        pod = self.pods.pop(key)
        worker = self.kubelet.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.delete()
        await self._delete_mirror(pod)

    def _static_by_name(self, namespace: str, name: str) -> dict | None:
        return next((p for p in self.pods.values()
                     if p["metadata"]["name"] == name and p["metadata"]["namespace"] == namespace), None)

    async def _ensure_mirror(self, pod: dict) -> None:
        from k8py.client import ApiError
        m = pod["metadata"]
        api = self._pods_api(m["namespace"])
        existing = self._known_mirror(m["namespace"], m["name"])
        if existing is not None:
            if (existing["metadata"].get("annotations") or {}).get(MIRROR) == m["annotations"][HASH] \
                    and not existing["metadata"].get("deletionTimestamp"):
                self._republish(pod)
                return
            await self._delete_mirror(pod, existing)
        try:
            await api.create(mirror_of(pod, self.kubelet.node_manager.node))
            log.info("mirror pod %s/%s created", m["namespace"], m["name"])
        except ApiError as e:
            if e.code != 409:
                log.warning("mirror pod %s: %s", m["name"], e)
                return
        self._republish(pod)

    def _known_mirror(self, namespace: str, name: str) -> dict | None:
        """The pod of that name bound to this node, as the kubelet's pod watch has it (a node may not
        read pods bound elsewhere, and asking for a missing one is refused, not 404)."""
        informer = getattr(self.kubelet, "informer", None)
        return informer.get(f"{namespace}/{name}") if informer is not None else None

    def _republish(self, pod: dict) -> None:
        worker = self.kubelet.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.last_status = None       # the mirror is new: write the status again
            worker.wake()

    async def _delete_mirror(self, pod: dict, existing: dict | None = None) -> None:
        from k8py.client import ApiError
        m = pod["metadata"]
        try:
            await self._pods_api(m["namespace"]).delete(
                m["name"], grace_period_seconds=0,
                preconditions={"uid": existing["metadata"]["uid"]} if existing else None)
        except ApiError as e:
            if e.code not in (404, 409):
                log.warning("deleting mirror pod %s: %s", m["name"], e)

    # ---- mirror pod events from the pod informer ------------------------------------------

    def mirror_changed(self, mirror: dict) -> None:
        m = mirror["metadata"]
        pod = self._static_by_name(m.get("namespace", "default"), m["name"])
        stale = pod is None or (m.get("annotations") or {}).get(MIRROR) != pod["metadata"]["annotations"][HASH]
        if stale or m.get("deletionTimestamp"):
            self._spawn(self._resync_mirror(mirror, pod))

    def mirror_deleted(self, mirror: dict) -> None:
        m = mirror["metadata"]
        pod = self._static_by_name(m.get("namespace", "default"), m["name"])
        if pod is not None:
            self._spawn(self._recreate_mirror(pod))

    async def _recreate_mirror(self, pod: dict) -> None:
        await asyncio.sleep(MIRROR_RECREATE_DELAY)
        if self._static_by_name(pod["metadata"]["namespace"], pod["metadata"]["name"]) is pod:
            await self._ensure_mirror(pod)

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._mirror_tasks.add(task)
        task.add_done_callback(self._mirror_done)

    def _mirror_done(self, task: asyncio.Task) -> None:
        self._mirror_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mirror pod: %s", task.exception())

    async def _resync_mirror(self, mirror: dict, pod: dict | None) -> None:
        try:
            if pod is None:
                await self._delete_mirror({"metadata": mirror["metadata"]}, mirror)
            else:
                # The mirror this event showed (being deleted, or of another manifest) goes
                # at once, by its UID: a read now may still answer with the copy before the
                # delete, and the mirror would then never be replaced. Its DELETED event
                # makes the new one.
                seen = mirror["metadata"]
                log.info("mirror pod %s/%s (uid %s) is being deleted or stale: removing it",
                         seen.get("namespace", "default"), seen["name"], seen.get("uid"))
                await self._delete_mirror(pod, mirror)
        except Exception:
            log.exception("mirror pod %s", mirror["metadata"]["name"])
