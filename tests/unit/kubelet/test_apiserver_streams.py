"""API server side of streams: container choice, authorization of upgrades,
and clear errors when no kubelet can be reached."""

from __future__ import annotations

import pytest

from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import ALLOW, DENY, NO_OPINION, Decision, Rules
from k8py.apiserver.streams import choose_container, kubelet_base
from k8py.apimachinery.errors import StatusError

from ..conftest import HEADERS


class ExecViewer:
    """viewer-token: may get pods and pods/exec, may not create anything."""

    def authorize(self, attrs):
        if attrs.user.name != "viewer":
            return Decision(NO_OPINION)
        return Decision(ALLOW if attrs.verb == "get" else DENY)

    def rules_for(self, user, namespace):
        return Rules()


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
       "spec": {"nodeName": "n1", "containers": [{"name": "a", "image": "busybox"},
                                                 {"name": "b", "image": "busybox"}],
                "initContainers": [{"name": "init", "image": "busybox"}]}}


def test_container_choice_follows_upstream():
    single = {"metadata": {"name": "s"}, "spec": {"containers": [{"name": "only"}]}}
    assert choose_container(single, None) == "only"
    assert choose_container(POD, "init") == "init"
    with pytest.raises(StatusError) as err:
        choose_container(POD, None)
    assert err.value.message == ("a container name must be specified for pod p, choose one of: [a b] "
                                           "or one of the init containers: [init]")
    with pytest.raises(StatusError) as err:
        choose_container(POD, "zzz")
    assert (err.value.code, err.value.message) == (400, "container zzz is not valid for pod p")


def test_kubelet_address_prefers_internal_ip():
    node = {"metadata": {"name": "n"}, "status": {
        "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.1.2.3"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}
    assert kubelet_base(node) == "https://10.1.2.3:10250"
    with pytest.raises(StatusError) as err:
        kubelet_base({"metadata": {"name": "n"}, "status": {}})
    assert err.value.code == 503 and 'no kubelet endpoint is known for node "n"' in err.value.message


async def test_websocket_exec_needs_create_and_unreachable_kubelets_are_statuses(client):
    api = client.api
    api.authorizer.add(ExecViewer())
    api.authenticator._tokens["viewer-token"] = UserInfo("viewer")
    resp = await client.post("/api/v1/namespaces/default/pods", json=POD, headers=HEADERS)
    assert resp.status == 201
    # no Node object at all
    resp = await client.get("/api/v1/namespaces/default/pods/p/log?container=a", headers=HEADERS)
    assert resp.status == 404 and (await resp.json())["message"] == 'nodes "n1" not found'
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    assert (await client.post("/api/v1/nodes", json=node, headers=HEADERS)).status == 201
    resp = await client.get("/api/v1/namespaces/default/pods/p/log?container=a", headers=HEADERS)
    body = await resp.json()
    assert resp.status == 503 and body["reason"] == "ServiceUnavailable"
    viewer = {"Authorization": "Bearer viewer-token", "Connection": "Upgrade", "Upgrade": "websocket",
              "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
              "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
    resp = await client.get("/api/v1/namespaces/default/pods/p/exec?command=ls&container=a&stdout=true",
                            headers=viewer)
    body = await resp.json()
    assert resp.status == 403
    assert body["message"].startswith('pods "p" is forbidden: User "viewer" cannot create resource "pods/exec"')
    resp = await client.get("/api/v1/namespaces/default/pods/p/portforward?ports=80", headers=viewer)
    assert resp.status == 403
    # logs are a read: the viewer gets past authorization (to the missing kubelet endpoint)
    resp = await client.get("/api/v1/namespaces/default/pods/p/log?container=a",
                            headers={"Authorization": "Bearer viewer-token"})
    assert resp.status == 503


@pytest.fixture
async def backend():
    from aiohttp import web

    async def hello(request):
        return web.Response(text=f"{request.method} {request.path} q={request.query.get('q', '')} "
                                 f"auth={request.headers.get('Authorization', '-')}")
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield site._server.sockets[0].getsockname()[1]
    await runner.cleanup()


async def test_pod_and_service_proxy_reach_the_workload(client, backend):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
                                                      "ports": [{"name": "http", "containerPort": backend}]}]}}
    created = await (await client.post("/api/v1/namespaces/default/pods", json=pod, headers=HEADERS)).json()
    resp = await client.get("/api/v1/namespaces/default/pods/web/proxy/", headers=HEADERS)
    assert resp.status == 503 and "has no IP address yet" in (await resp.json())["message"]
    created["status"] = {"phase": "Running", "podIP": "127.0.0.1"}
    resp = await client.put("/api/v1/namespaces/default/pods/web/status", json=created, headers=HEADERS)
    assert resp.status == 200, await resp.text()
    # the first declared port, a named port, an explicit number: all reach the same server
    for name in ("web", "web:http", f"web:{backend}"):
        resp = await client.post(f"/api/v1/namespaces/default/pods/{name}/proxy/some/path?q=1", headers=HEADERS)
        assert resp.status == 200
        assert await resp.text() == "POST /some/path q=1 auth=-"    # the caller's credentials stay here
    resp = await client.head("/api/v1/namespaces/default/pods/web/proxy/x", headers=HEADERS)
    assert resp.status == 200, await resp.text()
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend}]}}
    assert (await client.post("/api/v1/namespaces/default/services", json=svc, headers=HEADERS)).status == 201
    resp = await client.get("/api/v1/namespaces/default/services/web/proxy/", headers=HEADERS)
    assert resp.status == 503 and (await resp.json())["message"] == 'no endpoints available for service "web"'
    resp = await client.get("/api/v1/namespaces/default/services/a:b:c:d/proxy/x", headers=HEADERS)
    assert resp.status == 400


def test_service_proxy_picks_an_endpoint_for_the_port():
    from types import SimpleNamespace
    from k8py.apiserver.streams import _service_target, split_proxy_name
    svc = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"ports": [{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}]}}
    endpoints = {"subsets": [{"addresses": [{"ip": "10.42.0.7"}],
                              "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}]}]}
    api = SimpleNamespace(_cached_obj=lambda *key: endpoints if key[3:] == ("default", "web") else None)
    assert _service_target(api, svc, "") == ("10.42.0.7", "8080")
    assert _service_target(api, svc, "80") == ("10.42.0.7", "8080")
    assert _service_target(api, svc, "metrics") == ("10.42.0.7", "9100")
    with pytest.raises(StatusError) as err:
        _service_target(api, svc, "81")
    assert err.value.code == 503
    assert split_proxy_name("https:web:443") == ("https", "web", "443")
    assert split_proxy_name("web") == ("", "web", "")
