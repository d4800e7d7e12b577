"""What every controller shares: informers, a work queue, workers, metrics.

The API, kept small on purpose:

    class MyController(Controller):
        name = "my"                       # the --controllers name and the queue name
        workers = 5                       # concurrent syncs (never two for one key)
        event_source = None               # Events' source.component; None: "<name>-controller"
        uses_expectations = True          # self.expectations: a ControllerExpectations of its own

        async def setup(self) -> None:    # ask for informers and hook handlers
            self.things = self.ctx.informer("apps/v1", "things")
            self.things.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                                    on_delete=self.enqueue)

        async def sync(self, key: str) -> None:
            ...                           # reconcile one key; raise to retry it with back-off
                                          # self.requeue_after(key, s) for a timed look later

    ctx = ControllerContext(client)       # one per controller-manager: informers are shared
    controller = MyController(ctx)
    await controller.run()                # setup, start informers, wait for sync, run workers forever

`ctx.informer(gv, plural)` returns the one shared Informer for that resource
(created on first request, started by `ctx.start_informers()` which
`Controller.run` calls); `ctx.ensure_index(informer, name, fn)` adds an
index to it once. `ctx.options` holds the manager's settings (data_dir,
root CA, pod GC threshold). `ctx.recorder(component)` gives an EventRecorder.
`self.enqueue(obj_or_key)` queues "ns/name" keys. Failures of `sync` are
retried with per-key exponential back-off (5 ms doubling up to 1000 s) and
counted in `ctx.metrics`; success forgets the back-off.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from k8py.client import ApiError, Client, EventRecorder, Informer, ShutDown, WorkQueue
from k8py.controllers.expectations import ControllerExpectations

log = logging.getLogger("k8py.controllers")


class Metrics:
    """Counters and gauges rendered as Prometheus text by the controller-manager."""

    def __init__(self):
        self.counters: dict[tuple[str, tuple], float] = defaultdict(float)
        self.gauges: dict[tuple[str, tuple], Callable[[], float]] = {}
        self.help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self.help[name] = (kind, text)

    def inc(self, name: str, labels: dict | None = None, value: float = 1.0) -> None:
        self.counters[(name, tuple(sorted((labels or {}).items())))] += value

    def gauge(self, name: str, labels: dict, fn) -> None:
        self.gauges[(name, tuple(sorted(labels.items())))] = fn

    def render(self) -> str:
        samples: dict[str, list[str]] = defaultdict(list)
        for (name, labels), value in list(self.counters.items()):
            samples[name].append(_sample(name, labels, value))
        for (name, labels), fn in list(self.gauges.items()):
            samples[name].append(_sample(name, labels, fn()))
        lines = []
        for name in sorted(samples):
            kind, text = self.help.get(name, ("untyped", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples[name]]
        return "\n".join(lines) + "\n"


def _sample(name: str, labels: tuple, value: float) -> str:
    label_text = ",".join(f'{k}="{v}"' for k, v in labels)
    number = int(value) if float(value).is_integer() else value
    return f"{name}{{{label_text}}} {number}" if label_text else f"{name} {number}"


class ControllerContext:
    """Shared by all controllers of one controller-manager."""

    def __init__(self, client: Client, metrics: Metrics | None = None):
        self.client = client                # what controllers write with
        self.informer_client = client       # the shared informers and event recorders
        self.metrics = metrics or Metrics()
        self._informers: dict[tuple, Informer] = {}
        self._recorders: dict[str, EventRecorder] = {}
        self._indexes: set[tuple[int, str]] = set()
        self.metrics.describe("workqueue_adds_total", "counter", "Total number of adds handled by workqueue")
        self.metrics.describe("workqueue_depth", "gauge", "Current depth of workqueue")
        self.metrics.describe("controller_syncs_total", "counter", "Syncs by controller and result")
        self.metrics.describe("controller_sync_seconds_total", "counter", "Seconds spent in syncs, by controller")
        self.options: dict = {}

    def informer(self, group_version: str, plural: str, namespace: str | None = None) -> Informer:
        key = (group_version, plural, namespace)
        if key not in self._informers:
            self._informers[key] = Informer(self.informer_client, group_version, plural, namespace=namespace,
                                            transform=without_managed_fields)
        return self._informers[key]

    def with_client(self, client: Client) -> ControllerContext:
        """The same context (informers, recorders, metrics, options) for a controller that writes
        with its own client (--use-service-account-credentials)."""
        view = copy.copy(self)
        view.client = client
        return view

    def ensure_index(self, informer: Informer, name: str, fn) -> None:
        """Add an index to a shared informer once, however many controllers ask for it."""
        key = (id(informer), name)
        if key not in self._indexes:
            self._indexes.add(key)
            informer.add_index(name, fn)

    async def start_informers(self) -> None:
        """Start every informer asked for so far; returns when all have listed."""
        await asyncio.gather(*(inf.start() for inf in list(self._informers.values())))

    def recorder(self, component: str) -> EventRecorder:
        if component not in self._recorders:
            self._recorders[component] = EventRecorder(self.informer_client, component=component)
        return self._recorders[component]

    async def stop(self) -> None:
        for inf in self._informers.values():
            await inf.stop()
        for rec in self._recorders.values():
            await rec.close()


def without_managed_fields(obj: dict) -> dict:
    """What the shared informers cache: objects without managedFields, as kube-controller-manager
    trims them. No controller reads them, they are often half an object's size, and an update
    sent without them keeps the server's."""
    meta = obj.get("metadata")
    if meta and "managedFields" in meta:
        meta.pop("managedFields")
    return obj


def object_key(obj_or_key) -> str:
    return obj_or_key if isinstance(obj_or_key, str) else Informer.key(obj_or_key)


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition("/")
    return namespace, name


class Controller:
    name = "controller"
    workers = 1
    # The component name on this controller's Events, when upstream's is not "<name>-controller".
    event_source: str | None = None
    # Controllers that create or delete children set this to get self.expectations.
    uses_expectations = False

    def __init__(self, ctx: ControllerContext):
        self.ctx = ctx
        self.client = ctx.client
        self.queue = WorkQueue(self.name)
        self.recorder = ctx.recorder(self.event_source or f"{self.name}-controller")
        self.expectations = ControllerExpectations() if self.uses_expectations else None
        self.ctx.metrics.gauge("workqueue_depth", {"name": self.name}, lambda: len(self.queue))

    async def setup(self) -> None:
        """Create informers and register handlers (called once, before informers start)."""

    async def sync(self, key: str) -> None:
        raise NotImplementedError

    def enqueue(self, obj_or_key, *_ignored) -> None:
        self.ctx.metrics.inc("workqueue_adds_total", {"name": self.name})
        self.queue.add(object_key(obj_or_key))

    def requeue_after(self, key: str, seconds: float) -> None:
        self.queue.add_after(key, seconds)

    async def run(self) -> None:
        await self.setup()
        await self.ctx.start_informers()
        await self.started()
        workers = [asyncio.create_task(self._work(), name=f"{self.name} worker {i}") for i in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            self.queue.shut_down()
            for w in workers:
                w.cancel()

    async def started(self) -> None:
        """Hook run once informers are synced, before workers start."""

    async def _work(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            start = time.monotonic()
            try:
                await self.sync(key)
            except asyncio.CancelledError:
                self.queue.done(key)
                raise
            except Exception as e:
                if _namespace_terminating(e):
                    # Nothing can be made in a namespace being deleted, and it will not come
                    # back: drop the key (as upstream) rather than retry for minutes.
                    log.debug("%s: sync %s dropped: %s", self.name, key, e)
                    self.ctx.metrics.inc("controller_syncs_total", {"controller": self.name, "result": "dropped"})
                    self.queue.forget(key)
                else:
                    self.ctx.metrics.inc("controller_syncs_total", {"controller": self.name, "result": "error"})
                    retries = self.queue.num_requeues(key)
                    level = logging.WARNING if retries >= 3 else logging.DEBUG
                    log.log(level, "%s: sync %s failed (retry %d): %s", self.name, key, retries, e,
                            exc_info=not _expected(e))
                    self.queue.add_rate_limited(key)
            else:
                self.ctx.metrics.inc("controller_syncs_total", {"controller": self.name, "result": "success"})
                self.queue.forget(key)
            finally:
                self.queue.done(key)
            self.ctx.metrics.inc("controller_sync_seconds_total", {"controller": self.name},
                                 time.monotonic() - start)


def _namespace_terminating(e: Exception) -> bool:
    return isinstance(e, ApiError) and e.code == 403 and "because it is being terminated" in str(e)


def _expected(e: Exception) -> bool:
    """API errors are routine (conflicts, gone objects): no stack trace for them."""
    return isinstance(e, ApiError)
