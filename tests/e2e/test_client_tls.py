"""k8py.client over real HTTPS: the admin certificate (components in `k8py server`) and a kubeconfig."""

from __future__ import annotations

import asyncio

from k8py.client import Client


def test_components_client_and_kubeconfig_client_reach_the_server(server):
    async def check():
        local = Client.for_local_server(server.data_dir, server.url)
        from_config = Client.from_kubeconfig(server.kubeconfig)
        try:
            ns = await local.resource("v1", "namespaces").get("kube-system")
            assert ns["metadata"]["name"] == "kube-system"
            listed = await from_config.resource("v1", "namespaces").list()
            assert "default" in {i["metadata"]["name"] for i in listed["items"]}
        finally:
            await local.close()
            await from_config.close()

    asyncio.run(check())
