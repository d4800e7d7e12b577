"""Objects every cluster has from its first start.

The system namespaces, the `kubernetes` Service in `default` pointing at the
API server (with its Endpoints and EndpointSlice), the two system PriorityClasses, and the ServiceAccount
kube-system/kube-proxy. (Each namespace's `default`
ServiceAccount and `kube-root-ca.crt` ConfigMap come from controllers in the
controller-manager, as upstream.) Creating them is idempotent: restarts keep what is
there.
"""

from __future__ import annotations

from k8py.apimachinery import errors
from k8py.apiserver.admission import BUILTIN_PRIORITIES

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


async def _ensure(store, namespace: str, obj: dict, trusted: bool = False) -> None:
    if store.get_cached(namespace, obj["metadata"]["name"]) is not None:
        return
    try:
        await store.create(obj, namespace, trusted=trusted)
    except errors.StatusError as err:
        if err.code != 409:
            raise


async def bootstrap(api) -> None:
    namespaces = api.objects_for("", "v1", "namespaces")
    for name in SYSTEM_NAMESPACES:
        await _ensure(namespaces, "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await _ensure_kubernetes_service(api)
    await _ensure_authentication_configmap(api)
    # A joined agent's kube-proxy runs as this account (kubeadm's kube-proxy ServiceAccount).
    await _ensure(api.objects_for("", "v1", "serviceaccounts"), "kube-system", {
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "kube-proxy", "namespace": "kube-system"}})
    classes = api.objects_for("scheduling.k8s.io", "v1", "priorityclasses")
    for name, value in BUILTIN_PRIORITIES.items():
        await _ensure(classes, "", {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value,
            "description": "Used for system critical pods that must not be moved from their current node."
            if name == "system-node-critical" else "Used for system critical pods that must run in the cluster, "
                                                   "but can be moved to another node if necessary."})


async def _ensure_kubernetes_service(api) -> None:
    services = api.objects_for("", "v1", "services")
    await _ensure(services, "default", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": api.service_allocations.ips.first_ip, "type": "ClusterIP",
                 "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": api.config.port}]},
    })
    endpoints = api.objects_for("", "v1", "endpoints")
    address = api.config.bind_address if api.config.bind_address != "0.0.0.0" else "127.0.0.1"
    await _ensure(endpoints, "default", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": address}],
                     "ports": [{"name": "https", "port": api.config.port, "protocol": "TCP"}]}],
    }, trusted=True)
    # Upstream's endpoint reconciler writes the matching EndpointSlice itself too
    # (the Service has no selector, so no controller would).
    slices = api.objects_for("discovery.k8s.io", "v1", "endpointslices")
    await _ensure(slices, "default", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "labels": {"kubernetes.io/service-name": "kubernetes"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": api.config.port, "protocol": "TCP"}],
    }, trusted=True)


async def _ensure_authentication_configmap(api) -> None:
    """What aggregated API servers (metrics-server) read to trust our front-proxy requests."""
    ca_path = api.config.data_dir / "server" / "tls" / "server-ca.crt"
    if not ca_path.exists():
        return
    ca = ca_path.read_text()
    await _ensure(api.objects_for("", "v1", "configmaps"), "kube-system", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extension-apiserver-authentication"},
        "data": {"client-ca-file": ca, "requestheader-client-ca-file": ca,
                 "requestheader-allowed-names": '["system:auth-proxy"]',
                 "requestheader-username-headers": '["X-Remote-User"]',
                 "requestheader-group-headers": '["X-Remote-Group"]',
                 "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]'}})

