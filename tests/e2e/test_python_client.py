"""The official Python client (`kubernetes` on PyPI) against k8py."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config, utils, watch
from kubernetes.client.rest import ApiException

from tests.e2e.conftest import REPO


@pytest.fixture(scope="module")
def api_client(server):
    return config.new_client_from_config(config_file=str(server.kubeconfig))


def test_crud_on_several_kinds(api_client, namespace):
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    cm = core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="py-cm", labels={"x": "1"}), data={"a": "1"}))
    assert cm.metadata.uid and cm.metadata.resource_version.isdigit()
    cm.data["a"] = "2"
    updated = core.replace_namespaced_config_map("py-cm", namespace, cm)
    assert int(updated.metadata.resource_version) > int(cm.metadata.resource_version)
    listed = core.list_namespaced_config_map(namespace, label_selector="x=1")
    assert [i.metadata.name for i in listed.items] == ["py-cm"]

    secret = core.create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="py-secret"), string_data={"user": "admin"}))
    assert core.read_namespaced_secret("py-secret", namespace).data == {"user": "YWRtaW4="}
    assert secret.type == "Opaque"

    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py-deploy"),
        spec=client.V1DeploymentSpec(
            replicas=2, selector=client.V1LabelSelector(match_labels={"app": "py"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "py"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]))))
    created = apps.create_namespaced_deployment(namespace, deployment)
    assert created.spec.strategy.type == "RollingUpdate"
    assert created.spec.template.spec.containers[0].image_pull_policy == "Always"
    scale = apps.read_namespaced_deployment_scale("py-deploy", namespace)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=py"
    apps.patch_namespaced_deployment_scale("py-deploy", namespace, {"spec": {"replicas": 3}})
    assert apps.read_namespaced_deployment("py-deploy", namespace).spec.replicas == 3

    core.delete_namespaced_config_map("py-cm", namespace)
    with pytest.raises(ApiException) as err:
        core.read_namespaced_config_map("py-cm", namespace)
    assert err.value.status == 404


def test_already_exists_body_matches_go_encoding(api_client, namespace):
    core = client.CoreV1Api(api_client)
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="dup"))
    core.create_namespaced_config_map(namespace, body)
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(namespace, body)
    assert err.value.status == 409
    assert err.value.body == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        '"message":"configmaps \\"dup\\" already exists","reason":"AlreadyExists",'
        '"details":{"name":"dup","kind":"configmaps"},"code":409}\n')


def test_patches(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="patched"), data={"a": "1", "b": "2"}))
    core.patch_namespaced_config_map("patched", namespace, {"data": {"b": None, "c": "3"}})
    got = core.read_namespaced_config_map("patched", namespace)
    assert got.data == {"a": "1", "c": "3"}
    core.patch_namespaced_config_map("patched", namespace, [{"op": "add", "path": "/data/d", "value": "4"}])
    assert core.read_namespaced_config_map("patched", namespace).data["d"] == "4"


def test_watch_with_and_without_resource_version(api_client, namespace):
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w0")))
    # Without a resourceVersion the watch starts with the existing objects.
    w = watch.Watch()
    first = next(iter(w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=5)))
    w.stop()
    assert first["type"] == "ADDED" and first["object"].metadata.name in ("w0", "kube-root-ca.crt")

    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    seen = []

    def consume():
        w2 = watch.Watch()
        for event in w2.stream(core.list_namespaced_config_map, namespace, resource_version=rv,
                               timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name))
            if len(seen) == 3:
                w2.stop()
    thread = threading.Thread(target=consume)
    thread.start()
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="w1")))
    core.patch_namespaced_config_map("w1", namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("w1", namespace)
    thread.join(timeout=15)
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("DELETED", "w1")]


def test_create_from_yaml(api_client, namespace):
    utils.create_from_yaml(api_client, str(REPO / "tests" / "data" / "seed" / "11-secret-configmap-env.yaml"),
                           namespace=namespace)
    core = client.CoreV1Api(api_client)
    assert core.read_namespaced_config_map("language", namespace).data == {"LANGUAGE": "English"}
    assert core.read_namespaced_secret("mysecret", namespace).data["username"] == "YWRtaW4="
    assert core.read_namespaced_pod("env-demo", namespace).spec.restart_policy == "Never"
