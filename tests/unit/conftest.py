"""In-process API server fixture: the real HTTP app over plain HTTP."""

from __future__ import annotations

import functools

import pytest
from aiohttp.test_utils import TestClient, TestServer

from k8py.apiserver import pki
from k8py.apiserver import server as server_module
from k8py.apiserver.authn import Authenticator
from k8py.apiserver.server import APIServer, ServerConfig
from k8py.storage.cache import WatchCache

TOKEN = "unit-token"
CMS = "/api/v1/namespaces/default/configmaps"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(tmp_path, request, monkeypatch):
    history = getattr(request, "param", None)
    if history:  # a tiny in-memory window, so old revisions must come from the store
        monkeypatch.setattr(server_module, "WatchCache", functools.partial(WatchCache, history=history))
    api = APIServer(ServerConfig(data_dir=tmp_path))
    api.authenticator = Authenticator.from_config(pki.ensure_pki(tmp_path / "tls"), TOKEN)
    await api.start()
    # What the serviceaccount controller would have made: pods in `default` need it.
    await ensure_default_service_account(api, "default")
    test_client = TestClient(TestServer(api.app()))
    await test_client.start_server()
    test_client.api = api
    yield test_client
    await test_client.close()
    await api.stop()


async def ensure_default_service_account(api, namespace: str) -> None:
    """Create `namespace`'s default ServiceAccount, as the controller-manager's serviceaccount
    controller would (the in-process server runs no controllers)."""
    store = api.objects_for("", "v1", "serviceaccounts")
    if store.get_cached(namespace, "default") is None:
        await store.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
                           namespace)


async def create_cm(client, name: str) -> dict:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    resp = await client.post(CMS, json=body, headers=HEADERS)
    assert resp.status == 201
    return await resp.json()


