"""Watch semantics through the API server's HTTP layer, in process."""

from __future__ import annotations

import json

import pytest

from k8py.apiserver import watch
from tests.unit.conftest import CMS, HEADERS, create_cm

async def events(resp, count: int) -> list[dict]:
    out = []
    while len(out) < count:
        line = await resp.content.readline()
        assert line, f"stream ended after {out}"
        out.append(json.loads(line))
    return out


@pytest.mark.parametrize("client", [2], indirect=True)
async def test_watch_from_compacted_revision_is_410_expired(client):
    first = await create_cm(client, "a")
    for name in ("b", "c", "d", "e"):
        await create_cm(client, name)
    await client.api.store.compact(client.api.store.revision)
    rv = first["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}", headers=HEADERS)
    assert resp.status == 200
    (event,) = await events(resp, 1)
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith(f"too old resource version: {rv}")


async def test_bookmarks_while_quiet(client, monkeypatch):
    monkeypatch.setattr(watch, "BOOKMARK_INTERVAL", 0.05)
    created = await create_cm(client, "quiet")
    rv = created["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=5",
                            headers=HEADERS)
    (event,) = await events(resp, 1)
    assert event["type"] == "BOOKMARK"
    assert event["object"]["kind"] == "ConfigMap"
    assert int(event["object"]["metadata"]["resourceVersion"]) >= int(rv)


async def test_send_initial_events_ends_with_marked_bookmark(client):
    await create_cm(client, "one")
    await create_cm(client, "two")
    resp = await client.get(f"{CMS}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                            f"&allowWatchBookmarks=true&timeoutSeconds=5", headers=HEADERS)
    got = await events(resp, 3)
    assert [e["type"] for e in got] == ["ADDED", "ADDED", "BOOKMARK"]
    assert {e["object"]["metadata"]["name"] for e in got[:2]} == {"one", "two"}
    assert got[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_watch_times_out_and_ends_stream(client):
    resp = await client.get(f"{CMS}?watch=true&resourceVersion=1&timeoutSeconds=0.2", headers=HEADERS)
    assert resp.status == 200
    assert await resp.content.read() == b""


async def test_label_selector_watch_sees_object_leave_and_enter(client):
    created = await create_cm(client, "moving")
    rv = created["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dweb", headers=HEADERS)
    merge = {"Content-Type": "application/merge-patch+json", **HEADERS}
    await client.patch(f"{CMS}/moving", data=json.dumps({"metadata": {"labels": {"app": "web"}}}), headers=merge)
    await client.patch(f"{CMS}/moving", data=json.dumps({"metadata": {"labels": {"app": "db"}}}), headers=merge)
    got = await events(resp, 2)
    assert [e["type"] for e in got] == ["ADDED", "DELETED"]
