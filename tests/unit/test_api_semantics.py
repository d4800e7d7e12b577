"""API semantics shared by every kind, through the in-process HTTP app."""

from __future__ import annotations

import json

from tests.unit.conftest import CMS, HEADERS, create_cm

JSON = {"Content-Type": "application/json", **HEADERS}
MERGE = {"Content-Type": "application/merge-patch+json", **HEADERS}
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"
SERVICES = "/api/v1/namespaces/default/services"


def deployment(name: str, replicas: int = 1) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


async def test_generate_name_uid_and_creation_timestamp(client):
    resp = await client.post(CMS, json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"generateName": "gen-"}}, headers=HEADERS)
    body = await resp.json()
    assert resp.status == 201
    name = body["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == len("gen-") + 5
    assert body["metadata"]["uid"] and body["metadata"]["creationTimestamp"].endswith("Z")


async def test_dry_run_writes_nothing(client):
    resp = await client.post(CMS + "?dryRun=All", json={"apiVersion": "v1", "kind": "ConfigMap",
                                                        "metadata": {"name": "dry"}}, headers=HEADERS)
    assert resp.status == 201
    assert (await client.get(CMS + "/dry", headers=HEADERS)).status == 404
    bad = await client.post(CMS + "?dryRun=Some", json={}, headers=HEADERS)
    assert bad.status == 400


async def test_delete_preconditions(client):
    created = await create_cm(client, "pre")
    wrong = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "not-the-uid"}}
    resp = await client.delete(CMS + "/pre", data=json.dumps(wrong), headers=JSON)
    body = await resp.json()
    assert resp.status == 409 and "Precondition failed: UID in precondition: not-the-uid" in body["message"]
    right = {"preconditions": {"uid": created["metadata"]["uid"],
                               "resourceVersion": created["metadata"]["resourceVersion"]}}
    resp = await client.delete(CMS + "/pre", data=json.dumps(right), headers=JSON)
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "Success"
    assert body["details"] == {"name": "pre", "kind": "configmaps", "uid": created["metadata"]["uid"]}


async def test_update_with_stale_resource_version_conflicts(client):
    created = await create_cm(client, "occ")
    await client.patch(CMS + "/occ", data=json.dumps({"data": {"a": "1"}}), headers=MERGE)
    created["data"] = {"a": "2"}
    resp = await client.put(CMS + "/occ", json=created, headers=HEADERS)
    body = await resp.json()
    assert resp.status == 409 and body["reason"] == "Conflict"
    assert body["message"] == ('Operation cannot be fulfilled on configmaps "occ": the object has been modified; '
                               'please apply your changes to the latest version and try again')


async def test_finalizers_hold_deletion_until_removed(client):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fin", "finalizers": ["example.com/x"]}}
    await client.post(CMS, json=body, headers=HEADERS)
    resp = await client.delete(CMS + "/fin", headers=HEADERS)
    marked = await resp.json()
    assert resp.status == 200 and marked["metadata"]["deletionTimestamp"]
    assert (await client.get(CMS + "/fin", headers=HEADERS)).status == 200
    await client.patch(CMS + "/fin", data=json.dumps({"metadata": {"finalizers": None}}), headers=MERGE)
    assert (await client.get(CMS + "/fin", headers=HEADERS)).status == 404


async def test_status_subresource_and_generation(client):
    resp = await client.post(DEPLOYS, json=deployment("gen"), headers=HEADERS)
    created = await resp.json()
    assert created["metadata"]["generation"] == 1
    status_patch = {"status": {"replicas": 7}, "spec": {"replicas": 9}}
    resp = await client.patch(DEPLOYS + "/gen/status", data=json.dumps(status_patch), headers=MERGE)
    after_status = await resp.json()
    assert after_status["status"]["replicas"] == 7
    assert after_status["spec"]["replicas"] == 1, "a status write must not change spec"
    assert after_status["metadata"]["generation"] == 1
    # A main-resource write ignores status and bumps generation on spec changes.
    resp = await client.patch(DEPLOYS + "/gen", data=json.dumps(status_patch), headers=MERGE)
    after_spec = await resp.json()
    assert after_spec["spec"]["replicas"] == 9 and after_spec["status"]["replicas"] == 7
    assert after_spec["metadata"]["generation"] == 2


async def test_deletecollection_by_label(client):
    for name, app in (("x1", "gone"), ("x2", "gone"), ("x3", "kept")):
        await client.post(CMS, json={"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": name, "labels": {"app": app}}}, headers=HEADERS)
    resp = await client.delete(CMS + "?labelSelector=app%3Dgone", headers=HEADERS)
    body = await resp.json()
    assert resp.status == 200 and sorted(i["metadata"]["name"] for i in body["items"]) == ["x1", "x2"]
    listed = await (await client.get(CMS, headers=HEADERS)).json()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["x3"]


async def test_list_pagination(client):
    for i in range(5):
        await create_cm(client, f"page-{i}")
    seen, token = [], ""
    while True:
        url = CMS + "?limit=2" + (f"&continue={token}" if token else "")
        body = await (await client.get(url, headers=HEADERS)).json()
        seen += [i["metadata"]["name"] for i in body["items"]]
        token = body["metadata"].get("continue", "")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] >= 1
    assert seen == [f"page-{i}" for i in range(5)]
    bad = await client.get(CMS + "?limit=2&continue=garbage", headers=HEADERS)
    assert bad.status == 400


async def test_service_cluster_ip_and_node_port_allocation(client):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np"},
           "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}
    created = await (await client.post(SERVICES, json=svc, headers=HEADERS)).json()
    ip, node_port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    assert ip.startswith("10.43.") and created["spec"]["clusterIPs"] == [ip]
    assert 30000 <= node_port <= 32767
    clash = dict(svc, metadata={"name": "np2"},
                 spec=dict(svc["spec"], clusterIP=ip, ports=[{"port": 80}]))
    resp = await client.post(SERVICES, json=clash, headers=HEADERS)
    body = await resp.json()
    assert resp.status == 422 and "provided IP is already allocated" in body["message"]
    # A PUT that leaves the allocated values out keeps them.
    replaced = dict(svc, metadata={"name": "np"})
    after = await (await client.put(SERVICES + "/np", json=replaced, headers=HEADERS)).json()
    assert after["spec"]["clusterIP"] == ip and after["spec"]["ports"][0]["nodePort"] == node_port
    await client.delete(SERVICES + "/np", headers=HEADERS)
    reuse = dict(clash, metadata={"name": "np3"})
    assert (await client.post(SERVICES, json=reuse, headers=HEADERS)).status == 201


async def test_scale_subresource(client):
    await client.post(DEPLOYS, json=deployment("sc", 2), headers=HEADERS)
    scale = await (await client.get(DEPLOYS + "/sc/scale", headers=HEADERS)).json()
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2 and scale["status"]["selector"] == "app=sc"
    resp = await client.patch(DEPLOYS + "/sc/scale", data=json.dumps({"spec": {"replicas": 4}}), headers=MERGE)
    assert (await resp.json())["spec"]["replicas"] == 4
    resp = await client.patch(DEPLOYS + "/sc/scale", data=json.dumps({"spec": {"replicas": -1}}), headers=MERGE)
    assert resp.status == 422
    assert (await (await client.get(DEPLOYS + "/sc", headers=HEADERS)).json())["spec"]["replicas"] == 4


async def test_table_response_for_kubectl_get(client):
    await create_cm(client, "tab")
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", **HEADERS}
    body = await (await client.get(CMS, headers=accept)).json()
    assert body["kind"] == "Table"
    assert [c["name"] for c in body["columnDefinitions"]] == ["Name", "Data", "Age"]
    row = next(r for r in body["rows"] if r["cells"][0] == "tab")
    assert row["object"]["kind"] == "PartialObjectMetadata"


async def test_delete_retries_when_the_object_changed_since_it_was_read(client, monkeypatch):
    """A controller writing status between the read and the delete must not turn a plain
    DELETE into 409: the server reads again and deletes (only preconditions may conflict)."""
    from k8py.storage.interface import RevisionConflictError
    await create_cm(client, "busy")
    store = client.api.objects_for("", "v1", "configmaps").store
    real_delete = store.delete
    conflicts = []

    async def delete_after_a_concurrent_write(key, revision):
        if not conflicts:
            conflicts.append(key)
            current = await client.api.store.get(key)  # as if a controller had written it meanwhile
            raise RevisionConflictError(key, revision, current)
        return await real_delete(key, revision)

    monkeypatch.setattr(store, "delete", delete_after_a_concurrent_write)
    resp = await client.delete(f"{CMS}/busy", headers=HEADERS)
    assert resp.status == 200 and conflicts
    assert (await client.get(f"{CMS}/busy", headers=HEADERS)).status == 404
