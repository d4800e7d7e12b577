"""The real kubectl against a freshly started k8py server."""

from __future__ import annotations

import json
import stat
import subprocess

import pytest
import yaml

from tests.e2e.conftest import REPO

SEED = REPO / "tests" / "data" / "seed"

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels:
    app: {app}
data:
  key: {value}
"""


def cm(name, app="demo", value="v1"):
    return CM.format(name=name, app=app, value=value)


def test_version_and_discovery(server):
    out = server.kubectl("version", "-o", "json")
    version = json.loads(out.stdout)
    assert version["serverVersion"]["major"] == "1"
    assert version["serverVersion"]["minor"] == "32"
    resources = server.kubectl("api-resources").stdout
    for line in ("pods ", "deployments ", "horizontalpodautoscalers", "priorityclasses"):
        assert line in resources
    assert any(l.split()[:2] == ["pods", "po"] for l in resources.splitlines())
    versions = server.kubectl("api-versions").stdout.split()
    for gv in ("v1", "apps/v1", "batch/v1", "autoscaling/v2", "autoscaling/v1", "rbac.authorization.k8s.io/v1",
               "networking.k8s.io/v1", "storage.k8s.io/v1", "coordination.k8s.io/v1", "events.k8s.io/v1"):
        assert gv in versions


@pytest.mark.parametrize("version", [None, "1.30", "1.33"])
def test_kubectl_versions_list_apply_and_explain(server, version):
    out = server.kubectl("get", "namespaces", version=version).stdout
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert {"default", "kube-system", "kube-public", "kube-node-lease"} <= set(names)
    assert out.splitlines()[0].split() == ["NAME", "STATUS", "AGE"]
    name = f"ver-{version or 'default'}".replace(".", "-")
    server.kubectl("apply", "-f", "-", version=version, input=cm(name))
    server.kubectl("apply", "-f", "-", version=version, input=cm(name, value="v2"))
    assert server.kubectl_json("get", "cm", name, version=version)["data"]["key"] == "v2"
    assert "FIELD: livenessProbe <Probe>" in server.kubectl("explain", "pod.spec.containers.livenessProbe",
                                                            version=version).stdout
    server.kubectl("delete", "cm", name, version=version)


def test_explain(server):
    out = server.kubectl("explain", "pod.spec.containers.livenessProbe").stdout
    assert "KIND:" in out and "Pod" in out
    assert "FIELD: livenessProbe <Probe>" in out
    assert "periodSeconds" in out and "httpGet" in out


@pytest.mark.parametrize("manifest", sorted(p.name for p in SEED.glob("*.yaml")))
def test_seed_manifests_apply_and_create(server, manifest):
    """Every seed manifest works unchanged with `apply -f`, then (after a
    delete) with `create -f`; the objects come back as stored."""
    path = SEED / manifest
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    # Manifests that name their namespaces go where they say; the rest get one of their own.
    ns_args = []
    if not any(d["metadata"].get("namespace") for d in docs):
        namespace = "seed-" + manifest.split("-")[0]
        server.kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n",
                       check=False)
        ns_args = ["-n", namespace]
    server.kubectl("apply", "-f", str(path), *ns_args)
    applied = _get_all(server, path, ns_args, len(docs))
    for doc, got in zip(docs, applied):
        assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    server.kubectl("delete", "-f", str(path), *ns_args, "--grace-period=0", "--force", "--wait=true", "--ignore-not-found")
    server.kubectl("create", "-f", str(path), *ns_args)
    created = _get_all(server, path, ns_args, len(docs))
    for doc, got in zip(docs, created):
        assert (got["kind"], got["metadata"]["name"]) == (doc["kind"], doc["metadata"]["name"])
        assert got["metadata"]["uid"]
        assert int(got["metadata"]["resourceVersion"]) > 0
        for key, value in (doc["metadata"].get("labels") or {}).items():
            assert got["metadata"]["labels"][key] == value
        if doc["kind"] in ("ConfigMap", "Secret") and "data" in doc:
            assert set(got["data"]) == set(doc["data"])
        if "spec" in doc:
            assert got["spec"], f"{doc['kind']}/{doc['metadata']['name']} lost its spec"
    server.kubectl("delete", "-f", str(path), *ns_args, "--grace-period=0", "--force", "--wait=true", "--ignore-not-found")


def _get_all(server, path, ns_args, count):
    listed = server.kubectl_json("get", "-f", str(path), *ns_args)
    items = listed["items"] if listed.get("kind") == "List" else [listed]
    assert len(items) == count
    return items


def test_get_output_formats(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("alpha", "web") + "---\n" + cm("beta", "db"))
    table = server.kubectl("get", "configmaps", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "DATA", "AGE"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["alpha"][1] == "1" and rows["beta"][1] == "1"
    labeled = server.kubectl("get", "cm", "-n", namespace, "-l", "app=web", "--show-labels").stdout
    assert "alpha" in labeled and "beta" not in labeled and "app=web" in labeled
    as_yaml = yaml.safe_load(server.kubectl("get", "cm", "alpha", "-n", namespace, "-o", "yaml").stdout)
    assert as_yaml["data"] == {"key": "v1"}
    path = server.kubectl("get", "cm", "alpha", "-n", namespace, "-o", "jsonpath={.data.key}").stdout
    assert path == "v1"
    custom = server.kubectl("get", "cm", "-n", namespace, "-l", "app", "--sort-by=.metadata.name",
                            "-o", "custom-columns=N:.metadata.name,V:.data.key").stdout.splitlines()
    assert [l.split() for l in custom] == [["N", "V"], ["alpha", "v1"], ["beta", "v1"]]
    desc = server.kubectl("get", "cm", "-n", namespace, "--sort-by=.metadata.name", "-o", "name").stdout.split()
    assert desc == ["configmap/alpha", "configmap/beta", "configmap/kube-root-ca.crt"]
    chunked = server.kubectl("get", "cm", "-n", namespace, "--chunk-size=1", "-o", "name").stdout.split()
    assert set(chunked) >= {"configmap/alpha", "configmap/beta"}
    everywhere = server.kubectl("get", "cm", "-A").stdout
    assert everywhere.splitlines()[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert namespace in everywhere


def test_pod_columns_and_wide(server, namespace):
    server.kubectl("run", "web", "--image=nginx", "-n", namespace)
    lines = server.kubectl("get", "pods", "-n", namespace).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["web", "0/1", "Pending", "0"]
    wide = server.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED",
                               "NODE", "READINESS", "GATES"]


def test_label_annotate_patch_scale(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", str(SEED / "09-deployment-rolling.yaml"))
    name = yaml.safe_load((SEED / "09-deployment-rolling.yaml").read_text())["metadata"]["name"]
    server.kubectl("label", "deployment", name, "-n", namespace, "tier=fe")
    server.kubectl("annotate", "deployment", name, "-n", namespace, "note=hello")
    got = server.kubectl_json("get", "deployment", name, "-n", namespace)
    assert got["metadata"]["labels"]["tier"] == "fe"
    assert got["metadata"]["annotations"]["note"] == "hello"
    server.kubectl("patch", "deployment", name, "-n", namespace, "--type=merge",
                   "-p", '{"spec":{"minReadySeconds":3}}')
    server.kubectl("patch", "deployment", name, "-n", namespace, "--type=json",
                   "-p", '[{"op":"replace","path":"/spec/revisionHistoryLimit","value":4}]')
    container = got["spec"]["template"]["spec"]["containers"][0]["name"]
    server.kubectl("patch", "deployment", name, "-n", namespace, "--type=strategic",
                   "-p", json.dumps({"spec": {"template": {"spec": {"containers": [
                       {"name": container, "image": "nginx:1.27"}]}}}}))
    got2 = server.kubectl_json("get", "deployment", name, "-n", namespace)
    assert got2["spec"]["minReadySeconds"] == 3
    assert got2["spec"]["revisionHistoryLimit"] == 4
    assert got2["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert got2["metadata"]["generation"] > got["metadata"]["generation"]
    server.kubectl("scale", "deployment", name, "-n", namespace, "--replicas=5")
    assert server.kubectl_json("get", "deployment", name, "-n", namespace)["spec"]["replicas"] == 5


def test_edit_with_editor_script(server, namespace, tmp_path):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("editme"))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/key: v1/key: edited/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    server.kubectl("edit", "cm", "editme", "-n", namespace, env={"KUBE_EDITOR": str(editor), "EDITOR": str(editor)})
    assert server.kubectl_json("get", "cm", "editme", "-n", namespace)["data"]["key"] == "edited"


def test_replace_with_stale_resource_version_conflicts(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("stale"))
    old = server.kubectl_json("get", "cm", "stale", "-n", namespace)
    server.kubectl("patch", "cm", "stale", "-n", namespace, "--type=merge", "-p", '{"data":{"key":"v2"}}')
    old["data"]["key"] = "v3"
    result = server.kubectl("replace", "-f", "-", input=json.dumps(old), check=False)
    assert result.returncode != 0
    assert "Conflict" in result.stderr and "the object has been modified" in result.stderr
    assert server.kubectl_json("get", "cm", "stale", "-n", namespace)["data"]["key"] == "v2"


def test_diff_shows_change_without_writing(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("diffme"))
    result = server.kubectl("diff", "-n", namespace, "-f", "-", input=cm("diffme", value="changed"), check=False)
    assert result.returncode == 1, result.stderr
    assert "-  key: v1" in result.stdout and "+  key: changed" in result.stdout
    assert server.kubectl_json("get", "cm", "diffme", "-n", namespace)["data"]["key"] == "v1"


def test_delete_variants(server, namespace):
    docs = "---\n".join(cm(f"d{i}", "gone" if i < 2 else "kept") for i in range(4))
    server.kubectl("apply", "-n", namespace, "-f", "-", input=docs)
    server.kubectl("delete", "cm", "d3", "-n", namespace)
    server.kubectl("delete", "cm", "-l", "app=gone", "-n", namespace)
    names = server.kubectl("get", "cm", "-n", namespace, "-o", "name").stdout.split()
    assert "configmap/d2" in names and not {"configmap/d0", "configmap/d1", "configmap/d3"} & set(names)
    server.kubectl("delete", "cm", "--all", "-n", namespace)
    assert "configmap/d2" not in server.kubectl("get", "cm", "-n", namespace, "-o", "name").stdout
    missing = server.kubectl("delete", "cm", "nope", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert 'Error from server (NotFound): configmaps "nope" not found' in missing.stderr


def test_force_delete_of_a_pod_bound_to_a_node(server, namespace):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck"},
           "spec": {"nodeName": "ghost-node", "containers": [{"name": "c", "image": "busybox"}]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    # No kubelet runs ghost-node: a normal delete only marks the pod.
    server.kubectl("delete", "pod", "stuck", "-n", namespace, "--wait=false")
    marked = server.kubectl_json("get", "pod", "stuck", "-n", namespace)
    assert marked["metadata"]["deletionTimestamp"]
    assert "Terminating" in server.kubectl("get", "pod", "stuck", "-n", namespace).stdout
    server.kubectl("delete", "pod", "stuck", "-n", namespace, "--force", "--grace-period=0")
    gone = server.kubectl("get", "pod", "stuck", "-n", namespace, check=False)
    assert gone.returncode == 1 and "NotFound" in gone.stderr


def test_get_watch_sees_later_changes(server, namespace):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("watched"))
    cmd = ["kubectl", f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.cache_dir}", "get", "cm",
           "-n", namespace, "-l", "app", "-w", "-o", "name"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        first = proc.stdout.readline()
        lines.append(first)
        server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("newcomer"))
        lines.append(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    assert lines[0].strip() == "configmap/watched"
    assert lines[1].strip() == "configmap/newcomer"


def test_describe_and_set_context(server, namespace, tmp_path):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=cm("described"))
    out = server.kubectl("describe", "cm", "described", "-n", namespace).stdout
    assert "Name:" in out and "described" in out and f"Namespace:    {namespace}" in out
    config = tmp_path / "kubeconfig"
    config.write_text(server.kubeconfig.read_text())
    server.kubectl(f"--kubeconfig={config}", "config", "set-context", "--current", f"--namespace={namespace}")
    names = server.kubectl(f"--kubeconfig={config}", "get", "cm", "-o", "name").stdout.split()
    assert "configmap/described" in names


def test_create_generators_that_send_protobuf(server, namespace):
    server.kubectl("create", "configmap", "gen-cm", "--from-literal=a=b", "-n", namespace)
    server.kubectl("create", "secret", "generic", "gen-secret", "--from-literal=p=q", "-n", namespace)
    server.kubectl("create", "deployment", "gen-deploy", "--image=nginx", "--replicas=2", "-n", namespace)
    assert server.kubectl_json("get", "cm", "gen-cm", "-n", namespace)["data"] == {"a": "b"}
    assert server.kubectl_json("get", "secret", "gen-secret", "-n", namespace)["data"] == {"p": "cQ=="}
    deploy = server.kubectl_json("get", "deploy", "gen-deploy", "-n", namespace)
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"


def test_server_side_apply_tracks_owners_and_conflicts(server, namespace):
    path = str(SEED / "09-deployment-rolling.yaml")
    name = yaml.safe_load((SEED / "09-deployment-rolling.yaml").read_text())["metadata"]["name"]
    server.kubectl("apply", "--server-side", "-n", namespace, "-f", path)
    got = server.kubectl_json("get", "deploy", name, "-n", namespace, "--show-managed-fields")
    entry = got["metadata"]["managedFields"][0]
    assert (entry["manager"], entry["operation"]) == ("kubectl", "Apply")
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]
    server.kubectl("scale", "deploy", name, "-n", namespace, "--replicas=5")
    conflict = server.kubectl("apply", "--server-side", "-n", namespace, "-f", path, check=False)
    assert conflict.returncode != 0
    assert "Apply failed with 1 conflict" in conflict.stderr and ".spec.replicas" in conflict.stderr
    server.kubectl("apply", "--server-side", "--force-conflicts", "-n", namespace, "-f", path)
    assert server.kubectl_json("get", "deploy", name, "-n", namespace)["spec"]["replicas"] == 3


def test_certificate_signing_request_approve(server):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "alice")])).sign(key, hashes.SHA256())
    import base64
    pem = base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": {"name": "alice-csr"},
           "spec": {"request": pem, "signerName": "kubernetes.io/kube-apiserver-client",
                    "usages": ["client auth"], "username": "someone-else"}}
    server.kubectl("create", "-f", "-", input=json.dumps(csr))
    assert "Pending" in server.kubectl("get", "csr", "alice-csr").stdout
    server.kubectl("certificate", "approve", "alice-csr")
    got = server.kubectl_json("get", "csr", "alice-csr")
    assert got["spec"]["username"] == "system:admin", "the requester is the authenticated user"
    assert [c["type"] for c in got["status"]["conditions"]] == ["Approved"]
    assert "Approved" in server.kubectl("get", "csr", "alice-csr").stdout
