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
