"""What k3s's metrics-server manifests put in the cluster: the kube-system/metrics-server
Service and the v1beta1.metrics.k8s.io APIService pointing at it.

The server listens on 127.0.0.1 in this process, so the Service is an ExternalName
for localhost and the APIService names the port it listens on this time. Written
at every start (the port changes), as k3s's deploy controller re-applies manifests.
"""

from __future__ import annotations

from k8py.client import ApiError

LABELS = {"k8s-app": "metrics-server"}


def objects(port: int) -> list[tuple[str, str, str | None, dict]]:
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "metrics-server", "namespace": "kube-system", "labels": dict(LABELS)},
               "spec": {"type": "ExternalName", "externalName": "localhost",
                        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}}
    apiservice = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                  "metadata": {"name": "v1beta1.metrics.k8s.io", "labels": dict(LABELS)},
                  "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                           "groupPriorityMinimum": 100, "versionPriority": 100,
                           "service": {"name": "metrics-server", "namespace": "kube-system", "port": port}}}
    return [("v1", "services", "kube-system", service),
            ("apiregistration.k8s.io/v1", "apiservices", None, apiservice)]


async def register(client, port: int) -> None:
    for group_version, plural, namespace, body in objects(port):
        resource = client.resource(group_version, plural, namespace)
        name = body["metadata"]["name"]
        try:
            current = await resource.get(name)
        except ApiError as e:
            if e.code != 404:
                raise
            await resource.create(body)
            continue
        current["metadata"].setdefault("labels", {}).update(body["metadata"]["labels"])
        current["spec"] = {**current.get("spec", {}), **body["spec"]}
        await resource.update(current)
