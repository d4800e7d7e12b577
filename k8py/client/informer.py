"""Informers: a local cache of one resource kept current by list + watch.

An informer lists once, then watches from the list's resourceVersion; when the
watch expires (410 Gone) or the connection drops, it lists again and turns the
difference into add/update/delete notifications, so handlers never miss a
change. Handlers are plain callables run in the order they were added.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from k8py.client.rest import ApiError, Client

log = logging.getLogger("k8py.client.informer")

Handler = Callable[..., None]


class Informer:
    def __init__(self, client: Client, group_version: str, plural: str, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 transform: Callable[[dict], dict] | None = None):
        self.resource = client.resource(group_version, plural, namespace)
        # Like client-go's SetTransform: trim objects (e.g. managedFields) before they are cached.
        self.transform = transform
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resource_version = ""
        self._items: dict[str, dict] = {}
        self._handlers: list[tuple[Handler | None, Handler | None, Handler | None]] = []
        self._index_funcs: dict[str, Callable[[dict], list[str]]] = {}
        self._indexes: dict[str, dict[str, set[str]]] = {}
        self._synced = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.add_index("namespace", lambda obj: [obj["metadata"].get("namespace", "")])

    @staticmethod
    def key(obj: dict) -> str:
        meta = obj["metadata"]
        return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]

    # -- reading the cache

    def get(self, key: str) -> dict | None:
        return self._items.get(key)

    def list(self) -> list[dict]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def by_index(self, index: str, value: str) -> list[dict]:
        return [self._items[k] for k in self._indexes[index].get(value, ())]

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    # -- configuration

    def add_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                    on_delete: Handler | None = None) -> None:
        self._handlers.append((on_add, on_update, on_delete))
        if on_add is not None:  # late handlers see what is already cached, as client-go does
            for obj in self._items.values():
                on_add(obj)

    def add_index(self, name: str, fn: Callable[[dict], list[str]]) -> None:
        self._index_funcs[name] = fn
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in fn(obj):
                index.setdefault(value, set()).add(key)
        self._indexes[name] = index

    # -- running

    async def start(self) -> None:
        """Start listing and watching; returns once the first list is in the cache."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.resource.plural}")
        await self.wait_synced()

    async def wait_synced(self) -> None:
        waiter = asyncio.create_task(self._synced.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            self._task.result()  # the run task ended early: surface its error

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    async def _run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._relist()
                backoff = 0.2
                await self._watch()
            except asyncio.CancelledError:
                raise
            except ApiError as e:
                if e.code != 410:
                    log.info("%s: %s; retrying in %.1fs", self.resource.plural, e, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            except Exception:  # a handler bug must not stop the cache from following the API
                log.exception("%s informer failed; relisting", self.resource.plural)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _relist(self) -> None:
        listed = await self.resource.list(label_selector=self.label_selector, field_selector=self.field_selector)
        fresh = {self.key(obj): obj for obj in _with_kind(listed)}
        for key in list(self._items):
            if key not in fresh:
                self._delete(key)
        for key, obj in fresh.items():
            self._upsert(key, obj)
        self.resource_version = listed["metadata"].get("resourceVersion", "")
        self._synced.set()

    async def _watch(self) -> None:
        # Ask the server to end the watch now and then, so a silently dead
        # connection cannot leave the cache stale forever.
        timeout = random.randint(300, 600)
        async for kind, obj in self.resource.watch(self.resource_version, timeout_seconds=timeout,
                                                   label_selector=self.label_selector,
                                                   field_selector=self.field_selector):
            self.resource_version = obj.get("metadata", {}).get("resourceVersion", self.resource_version)
            if kind == "BOOKMARK":
                continue
            key = self.key(obj)
            if kind == "DELETED":
                if key in self._items:
                    self._delete(key, self.transform(obj) if self.transform is not None else obj)
            else:
                self._upsert(key, obj)

    def _upsert(self, key: str, obj: dict) -> None:
        if self.transform is not None:
            obj = self.transform(obj)
        old = self._items.get(key)
        if old is not None and old["metadata"].get("resourceVersion") == obj["metadata"].get("resourceVersion"):
            return
        self._unindex(key, old)
        self._items[key] = obj
        for name, fn in self._index_funcs.items():
            for value in fn(obj):
                self._indexes[name].setdefault(value, set()).add(key)
        for on_add, on_update, _ in self._handlers:
            self._call(on_update, old, obj) if old is not None else self._call(on_add, obj)

    def _delete(self, key: str, final: dict | None = None) -> None:
        old = self._items.pop(key)
        self._unindex(key, old)
        for _, _, on_delete in self._handlers:
            self._call(on_delete, final or old)

    def _unindex(self, key: str, obj: dict | None) -> None:
        if obj is None:
            return
        for name, fn in self._index_funcs.items():
            for value in fn(obj):
                keys = self._indexes[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indexes[name][value]

    def _call(self, handler: Handler | None, *args) -> None:
        if handler is None:
            return
        try:
            handler(*args)
        except Exception:
            log.exception("%s informer handler %r failed", self.resource.plural, handler)


def _with_kind(listed: dict) -> list[dict]:
    """List items omit kind/apiVersion; put them back so cached objects look like watched ones."""
    kind = listed.get("kind", "")
    kind = kind[:-4] if kind.endswith("List") else kind
    api_version = listed.get("apiVersion", "")
    items = listed.get("items") or []
    for item in items:
        item.setdefault("kind", kind)
        item.setdefault("apiVersion", api_version)
    return items
