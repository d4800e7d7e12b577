"""Upstream conformance behaviours (tests/data/compat/conformance-v1.32.yaml)
shown against the in-process API server. Each test names the behaviour."""

from __future__ import annotations

import json

from tests.unit.conftest import CMS, HEADERS, create_cm

MERGE = {"Content-Type": "application/merge-patch+json", **HEADERS}


async def lines(resp, count):
    out = []
    while len(out) < count:
        out.append(json.loads(await resp.content.readline()))
    return out


async def test_find_kubernetes_service_in_default_namespace(client):
    body = await (await client.get("/api/v1/services", headers=HEADERS)).json()
    assert ("default", "kubernetes") in {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in body["items"]}


async def test_discovery_preferred_version_for_each_group(client):
    groups = (await (await client.get("/apis", headers=HEADERS)).json())["groups"]
    assert groups
    for group in groups:
        preferred = group["preferredVersion"]["groupVersion"]
        assert preferred in [v["groupVersion"] for v in group["versions"]]
        one = await (await client.get(f"/apis/{group['name']}", headers=HEADERS)).json()
        assert one["preferredVersion"]["groupVersion"] == preferred


async def test_namespace_patching(client):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "patchme"}}
    assert (await client.post("/api/v1/namespaces", json=ns, headers=HEADERS)).status == 201
    await client.patch("/api/v1/namespaces/patchme", data=json.dumps({"metadata": {"labels": {"testLabel": "v"}}}),
                       headers=MERGE)
    got = await (await client.get("/api/v1/namespaces/patchme", headers=HEADERS)).json()
    assert got["metadata"]["labels"]["testLabel"] == "v"


async def test_secret_and_configmap_with_empty_key_are_refused(client):
    for path, kind in (("/api/v1/namespaces/default/secrets", "Secret"), (CMS, "ConfigMap")):
        body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "empty-key"}, "data": {"": "dmFsdWU="}}
        resp = await client.post(path, json=body, headers=HEADERS)
        assert resp.status == 422, kind
        assert (await client.get(f"{path}/empty-key", headers=HEADERS)).status == 404


async def test_watch_configmaps_from_resource_version(client):
    await create_cm(client, "from-rv")
    first = await (await client.patch(CMS + "/from-rv", data=json.dumps({"data": {"mutation": "1"}}),
                                      headers=MERGE)).json()
    await client.patch(CMS + "/from-rv", data=json.dumps({"data": {"mutation": "2"}}), headers=MERGE)
    await client.delete(CMS + "/from-rv", headers=HEADERS)
    rv = first["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dfrom-rv",
                            headers=HEADERS)
    got = await lines(resp, 2)
    assert [e["type"] for e in got] == ["MODIFIED", "DELETED"]
    assert got[0]["object"]["data"] == {"mutation": "2"}


async def test_watch_configmaps_label_changed(client):
    created = await create_cm(client, "labelled")
    await client.patch(CMS + "/labelled", data=json.dumps({"metadata": {"labels": {"watch": "yes"}}}),
                       headers=MERGE)
    rv = created["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}&labelSelector=watch%3Dyes", headers=HEADERS)
    for patch in ({"data": {"m": "1"}}, {"metadata": {"labels": {"watch": "no"}}}, {"data": {"m": "2"}},
                  {"metadata": {"labels": {"watch": "yes"}}}, {"data": {"m": "3"}}):
        await client.patch(CMS + "/labelled", data=json.dumps(patch), headers=MERGE)
    got = await lines(resp, 5)
    # Stops matching -> DELETED; changes while not matching are not seen; matching again -> ADDED.
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED", "DELETED", "ADDED", "MODIFIED"]
    assert got[3]["object"]["data"] == {"m": "2"} and got[4]["object"]["data"] == {"m": "3"}
