"""k8py.client against the in-process API server: REST, watch, informers, work queue, events, leases."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client import ApiError, Client, EventRecorder, Informer, LeaderElector, ShutDown, WorkQueue
from tests.unit.conftest import TOKEN


@pytest.fixture
async def api(client):
    c = Client(str(client.make_url("")), token=TOKEN)
    yield c
    await c.close()


def cm(name, data=None):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": data or {}}


async def wait_until(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_crud_and_errors(api):
    cms = api.resource("v1", "configmaps", "default")
    created = await cms.create(cm("a", {"k": "v"}))
    assert created["metadata"]["uid"]
    assert (await cms.get("a"))["data"] == {"k": "v"}
    created["data"] = {"k": "w"}
    assert (await cms.update(created))["data"] == {"k": "w"}
    patched = await cms.patch("a", {"data": {"x": "y"}})
    assert patched["data"] == {"k": "w", "x": "y"}
    assert [i["metadata"]["name"] for i in (await cms.list())["items"]] == ["a"]
    with pytest.raises(ApiError) as e:
        await cms.create(cm("a"))
    assert e.value.code == 409 and e.value.already_exists
    await cms.delete("a")
    with pytest.raises(ApiError) as e:
        await cms.get("a")
    assert e.value.not_found


async def test_watch_yields_events_and_410(api):
    cms = api.resource("v1", "configmaps", "default")
    rv = (await cms.list())["metadata"]["resourceVersion"]
    await cms.create(cm("w1"))
    await cms.delete("w1")
    seen = []
    async for kind, obj in cms.watch(resource_version=rv, timeout_seconds=1, bookmarks=False):
        seen.append((kind, obj["metadata"]["name"]))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "w1"), ("DELETED", "w1")]


async def test_informer_relists_after_gone_and_reports_what_it_missed(api):
    cms = api.resource("v1", "configmaps", "default")
    await cms.create(cm("stays"))
    await cms.create(cm("goes"))
    informer = Informer(api, "v1", "configmaps")
    deleted = []
    informer.add_handler(on_delete=lambda o: deleted.append(o["metadata"]["name"]))
    real_watch = informer.resource.watch
    calls = 0

    async def watch_gone_once(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 1:  # the first watch ends with 410 after a change the informer never saw
            await cms.delete("goes")
            raise ApiError({"code": 410, "reason": "Expired", "message": "too old resource version"})
        async for item in real_watch(*args, **kwargs):
            yield item

    informer.resource.watch = watch_gone_once
    await informer.start()
    try:
        await wait_until(lambda: deleted == ["goes"])
        assert informer.keys() == ["default/stays"]
    finally:
        await informer.stop()


async def test_informer_follows_changes_and_indexes(api):
    cms = api.resource("v1", "configmaps", "default")
    await cms.create(cm("before"))
    informer = Informer(api, "v1", "configmaps", label_selector="app=x")
    events = []
    informer.add_handler(on_add=lambda o: events.append(("add", o["metadata"]["name"])),
                         on_update=lambda old, new: events.append(("update", new["metadata"]["name"])),
                         on_delete=lambda o: events.append(("delete", o["metadata"]["name"])))
    labelled = cm("x1")
    labelled["metadata"]["labels"] = {"app": "x"}
    await cms.create(labelled)
    await informer.start()
    try:
        await wait_until(lambda: informer.get("default/x1") is not None)
        assert informer.get("default/before") is None  # outside the selector
        await cms.patch("x1", {"data": {"a": "b"}})
        await wait_until(lambda: ("update", "x1") in events)
        assert [o["metadata"]["name"] for o in informer.by_index("namespace", "default")] == ["x1"]
        assert informer.get("default/x1")["kind"] == "ConfigMap"
        await cms.delete("x1")
        await wait_until(lambda: ("delete", "x1") in events)
        assert informer.list() == []
    finally:
        await informer.stop()


async def test_work_queue_dedups_and_requeues_while_processing():
    q = WorkQueue("t", base_delay=0.01)
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    key = await q.get()
    assert key == "a"
    q.add("a")              # added while processing: held back until done
    assert await q.get() == "b"
    q.done("b")
    q.done("a")
    assert await q.get() == "a"
    q.done("a")
    q.add_rate_limited("c")
    q.add_rate_limited("c")
    assert q.num_requeues("c") == 2
    assert await asyncio.wait_for(q.get(), 1) == "c"
    q.forget("c")
    assert q.num_requeues("c") == 0
    q.shut_down()
    with pytest.raises(ShutDown):
        await q.get()


async def test_event_recorder_aggregates_repeats(api):
    cms = api.resource("v1", "configmaps", "default")
    obj = await cms.create(cm("evt"))
    obj["kind"], obj["apiVersion"] = "ConfigMap", "v1"
    recorder = EventRecorder(api, component="test-controller")
    recorder.event(obj, "Normal", "Poked", "poked once")
    recorder.event(obj, "Normal", "Poked", "poked once")
    await recorder.flush()
    events = (await api.resource("v1", "events", "default").list())["items"]
    assert len(events) == 1
    assert events[0]["count"] == 2 and events[0]["involvedObject"]["name"] == "evt"
    assert events[0]["source"]["component"] == "test-controller"
    await recorder.close()


async def test_event_recorder_combines_similar_and_filters_spam(api):
    cms = api.resource("v1", "configmaps", "default")
    obj = await cms.create(cm("busy"))
    obj["kind"], obj["apiVersion"] = "ConfigMap", "v1"
    recorder = EventRecorder(api, component="test-controller")
    for i in range(40):  # a ReplicaSet creating 40 pods says "Created pod: <name>" 40 times
        recorder.event(obj, "Normal", "SuccessfulCreate", f"Created pod: busy-{i}")
    await recorder.flush()
    events = (await api.resource("v1", "events", "default").list())["items"]
    combined = [e for e in events if e["message"].startswith("(combined from similar events): ")]
    # 9 distinct messages stand alone, the rest fold into one Event, and the 25-write
    # budget of this (source, object) pair caps the patches of its count.
    assert len(events) == 10 and len(combined) == 1
    assert combined[0]["count"] == 25 - 9
    await recorder.close()


async def test_event_recorder_drops_beyond_its_queue_and_records_a_dropped_event_afresh_later(api, monkeypatch):
    from k8py.client import events as events_module
    monkeypatch.setattr(events_module, "MAX_PENDING", 2)
    cms = api.resource("v1", "configmaps", "default")
    objs = []
    for i in range(3):
        obj = await cms.create(cm(f"queued-{i}"))
        obj["kind"], obj["apiVersion"] = "ConfigMap", "v1"
        objs.append(obj)
    recorder = EventRecorder(api, component="test-controller")
    for obj in objs:    # queued synchronously: the third finds two writes pending
        recorder.event(obj, "Normal", "Poked", "poked")
    await recorder.flush()
    names = sorted(e["involvedObject"]["name"] for e in
                   (await api.resource("v1", "events", "default").list())["items"])
    assert names == ["queued-0", "queued-1"]
    # Recorded again once there is room, the dropped one is a new Event, not a count patch.
    recorder.event(objs[2], "Normal", "Poked", "poked")
    await recorder.flush()
    third = [e for e in (await api.resource("v1", "events", "default").list())["items"]
             if e["involvedObject"]["name"] == "queued-2"]
    assert len(third) == 1 and third[0]["count"] == 1
    await recorder.close()


async def test_leader_election_one_leader_at_a_time(api):
    started = asyncio.Event()
    release = asyncio.Event()

    async def lead():
        started.set()
        await release.wait()

    first = LeaderElector(api, "lock", "default", "one", lease_duration=2, renew_deadline=1, retry_period=0.1)
    second = LeaderElector(api, "lock", "default", "two", lease_duration=2, renew_deadline=1, retry_period=0.1)
    task = asyncio.create_task(first.run(lead))
    await asyncio.wait_for(started.wait(), 5)
    assert not await second._try_acquire_or_renew()
    lease = await api.resource("coordination.k8s.io/v1", "leases", "default").get("lock")
    assert lease["spec"]["holderIdentity"] == "one"
    release.set()
    await asyncio.wait_for(task, 5)
