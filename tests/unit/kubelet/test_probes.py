"""Probe and hook actions against real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from k8py.kubelet import hooks, probe_actions
from k8py.kubelet.probes import ContainerProbes
from tests.unit.kubelet.conftest import eventually
from tests.unit.kubelet.memory_runtime import FakeRuntime


@pytest.fixture
async def http_server():
    seen = []

    async def healthz(request):
        seen.append(dict(request.headers))
        return web.Response(text="ok")

    async def broken(request):
        return web.Response(status=500, text="nope")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/broken", broken)
    async def moved(request):
        raise web.HTTPFound("/healthz")

    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield port, seen
    await runner.cleanup()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_http_get_probe(http_server):
    port, seen = http_server
    container = {"name": "web", "ports": [{"name": "http", "containerPort": port}]}
    action = {"path": "/healthz", "port": "http", "httpHeaders": [{"name": "X-Custom-Header", "value": "Awesome"}]}
    ok, _, code = await probe_actions.run_http_get(action, container, "127.0.0.1", 1)
    assert ok and code == 200
    assert seen[-1]["X-Custom-Header"] == "Awesome" and seen[-1]["User-Agent"].startswith("kube-probe/1.")
    ok, message, code = await probe_actions.run_http_get({"path": "/broken", "port": port}, container,
                                                         "127.0.0.1", 1)
    assert not ok and message == "HTTP probe failed with statuscode: 500"
    ok, _, code = await probe_actions.run_http_get({"path": "/moved", "port": port}, container, "127.0.0.1", 1)
    assert ok and code == 200
    closed = free_port()
    ok, message, _ = await probe_actions.run_http_get({"path": "/x", "port": closed}, container, "127.0.0.1", 1)
    assert not ok
    assert message == f'Get "http://127.0.0.1:{closed}/x": dial tcp 127.0.0.1:{closed}: connect: connection refused'


async def test_tcp_probe(http_server):
    port, _ = http_server
    assert await probe_actions.run_tcp({"port": port}, {}, "127.0.0.1", 1) == (True, "")
    closed = free_port()
    assert await probe_actions.run_tcp({"port": closed}, {}, "127.0.0.1", 1) == \
        (False, f"dial tcp 127.0.0.1:{closed}: connect: connection refused")


async def test_tcp_probe_timeout_is_not_spent_by_a_busy_event_loop(http_server):
    """The kubelet shares its event loop with the API server: a second-long stall of that loop must
    not turn a port that accepted at once into an i/o timeout."""
    port, _ = http_server
    probe = asyncio.create_task(probe_actions.run_tcp({"port": port}, {}, "127.0.0.1", 1))
    for _ in range(3):
        await asyncio.sleep(0)        # the connect is under way
    import time
    time.sleep(1.3)                   # the loop is busy elsewhere for longer than the timeout
    assert await probe == (True, "")


async def test_probe_thresholds_and_initial_delay():
    runtime = FakeRuntime()
    runtime.exec_results["check"] = (1, b"down")
    results, events = [], []
    container = {"name": "c", "readinessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 0.05,
                                                 "failureThreshold": 3, "successThreshold": 2}}
    probes = ContainerProbes(runtime, container, "cid", "127.0.0.1",
                             lambda *a: results.append(a[1:3]), lambda kind, msg: events.append(msg))
    probes.start()
    try:
        await eventually(lambda: results, 2, "a readiness failure")
        assert results[0] == ("readiness", False)
        assert len(events) >= 3 and events[0] == "Readiness probe failed: down"
        runtime.exec_results["check"] = (0, b"")
        await eventually(lambda: ("readiness", True) in results, 2, "readiness success")
        # successThreshold 2: at least two good probes ran before it flipped.
        assert sum(1 for cid, argv in runtime.execs if argv == ["check"]) >= 5
    finally:
        probes.stop()


class SlowExecRuntime(FakeRuntime):
    """Each exec takes half a second, and notes when it began."""

    def __init__(self):
        super().__init__()
        self.began: list[float] = []

    async def exec_sync(self, container_id, argv, timeout):
        self.began.append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.5)
        return await super().exec_sync(container_id, argv, timeout)


async def test_probes_start_every_period_however_long_each_takes():
    runtime = SlowExecRuntime()
    container = {"name": "c", "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 0.7}}
    probes = ContainerProbes(runtime, container, "cid", "127.0.0.1", lambda *a: None, lambda *a: None)
    probes.start()
    try:
        await eventually(lambda: len(runtime.began) >= 5, 6, "five probes")
        gaps = [b - a for a, b in zip(runtime.began, runtime.began[1:5])]
        # 0.7 s apart (a sleep of a period after each probe would make it 1.2 s)
        assert sum(gaps) / len(gaps) < 0.95, gaps
    finally:
        probes.stop()


async def test_startup_probe_holds_back_liveness():
    runtime = FakeRuntime()
    runtime.exec_results["started"] = (1, b"")
    results = []
    container = {"name": "c",
                 "startupProbe": {"exec": {"command": ["started"]}, "periodSeconds": 0.05, "failureThreshold": 100},
                 "livenessProbe": {"exec": {"command": ["alive"]}, "periodSeconds": 0.05}}
    probes = ContainerProbes(runtime, container, "cid", "127.0.0.1", lambda *a: results.append(a[1:3]),
                             lambda *a: None)
    probes.start()
    try:
        # Liveness has the same period: had it not waited for startup, it would run beside these.
        await eventually(lambda: sum(argv == ["started"] for _, argv in runtime.execs) >= 4, 2,
                         "four failed startup probes")
        assert not any(argv == ["alive"] for _, argv in runtime.execs)
        runtime.exec_results["started"] = (0, b"")
        await eventually(lambda: ("startup", True) in results, 2, "startup success")
        await eventually(lambda: any(argv == ["alive"] for _, argv in runtime.execs), 2, "liveness runs")
    finally:
        probes.stop()


async def test_hooks_report_failures_in_kubelet_words(http_server):
    port, _ = http_server
    runtime = FakeRuntime()
    runtime.exec_results["false"] = (1, b"bad things")
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    assert await hooks.run_hook(runtime, {"exec": {"command": ["true"]}}, pod, {"name": "c"}, "cid", "", 5) is None
    message = await hooks.run_hook(runtime, {"exec": {"command": ["false"]}}, pod, {"name": "c"}, "cid", "", 5)
    assert message.startswith("Exec lifecycle hook ([false]) for Container \"c\" in Pod \"p_ns(u)\" failed")
    assert await hooks.run_hook(runtime, {"httpGet": {"path": "/healthz", "port": port}}, pod, {"name": "c"},
                                "cid", "127.0.0.1", 5) is None
    message = await hooks.run_hook(runtime, {"httpGet": {"path": "/broken", "port": port}}, pod, {"name": "c"},
                                   "cid", "127.0.0.1", 5)
    assert message.startswith("HTTP lifecycle hook (/broken) for Container \"c\" in Pod \"p_ns(u)\" failed")
