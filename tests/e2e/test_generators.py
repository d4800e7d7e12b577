"""Every `kubectl create <kind>` generator, `autoscale` and `create token`, with each kubectl version.

kubectl 1.32 and later send these bodies as protobuf; the objects must come
out exactly as the generator meant them.
"""

from __future__ import annotations

import pytest

GENERATORS = [
    (("deployment", "g-deploy", "--image=nginx:1.27", "--replicas=2", "--port=80"),
     "deployment", "g-deploy", lambda o: o["spec"]["replicas"] == 2 and
     o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80),
    (("configmap", "g-cm", "--from-literal=a=1", "--from-literal=b=two"),
     "configmap", "g-cm", lambda o: o["data"] == {"a": "1", "b": "two"}),
    (("secret", "generic", "g-secret", "--from-literal=pw=s3cret"),
     "secret", "g-secret", lambda o: o["data"] == {"pw": "czNjcmV0"} and o["type"] == "Opaque"),
    (("secret", "docker-registry", "g-reg", "--docker-server=r.example", "--docker-username=u",
      "--docker-password=p"),
     "secret", "g-reg", lambda o: o["type"] == "kubernetes.io/dockerconfigjson"),
    (("service", "clusterip", "g-svc", "--tcp=80:8080"),
     "service", "g-svc", lambda o: o["spec"]["ports"][0]["targetPort"] == 8080 and o["spec"]["clusterIP"]),
    (("service", "nodeport", "g-np", "--tcp=80:8080"),
     "service", "g-np", lambda o: 30000 <= o["spec"]["ports"][0]["nodePort"] <= 32767),
    (("serviceaccount", "g-sa"), "serviceaccount", "g-sa", lambda o: o["kind"] == "ServiceAccount"),
    (("job", "g-job", "--image=busybox", "--", "echo", "hi"),
     "job", "g-job", lambda o: o["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]),
    (("cronjob", "g-cron", "--image=busybox", "--schedule=*/5 * * * *"),
     "cronjob", "g-cron", lambda o: o["spec"]["schedule"] == "*/5 * * * *"),
    (("quota", "g-quota", "--hard=pods=10,cpu=4"),
     "resourcequota", "g-quota", lambda o: o["spec"]["hard"] == {"pods": "10", "cpu": "4"}),
    (("role", "g-role", "--verb=get,list", "--resource=pods"),
     "role", "g-role", lambda o: o["rules"][0]["verbs"] == ["get", "list"]),
    (("rolebinding", "g-rb", "--role=g-role", "--user=jane"),
     "rolebinding", "g-rb", lambda o: o["subjects"][0]["name"] == "jane"),
    (("poddisruptionbudget", "g-pdb", "--selector=app=x", "--min-available=1"),
     "pdb", "g-pdb", lambda o: o["spec"]["minAvailable"] == 1),
    (("ingress", "g-ing", "--rule=foo.example/bar=svc1:8080,tls=my-cert"),
     "ingress", "g-ing", lambda o: o["spec"]["rules"][0]["host"] == "foo.example" and
     o["spec"]["tls"][0]["secretName"] == "my-cert"),
]

CLUSTER_GENERATORS = [
    (("namespace", "{prefix}-ns"), "namespace", lambda o: o["status"]["phase"] == "Active"),
    (("clusterrole", "{prefix}-cr", "--verb=get", "--resource=nodes"), "clusterrole",
     lambda o: o["rules"][0]["resources"] == ["nodes"]),
    (("clusterrolebinding", "{prefix}-crb", "--clusterrole={prefix}-cr", "--group=devs"), "clusterrolebinding",
     lambda o: o["roleRef"]["name"].endswith("-cr") and o["subjects"][0]["kind"] == "Group"),
    (("priorityclass", "{prefix}-pc", "--value=1000", "--description=high"), "priorityclass",
     lambda o: o["value"] == 1000 and o["description"] == "high"),
]

VERSIONS = [None, "1.33"]


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v or "dispatcher")
def test_namespaced_generators(server, namespace, version):
    for args, kind, name, check in GENERATORS:
        server.kubectl("create", "-n", namespace, *args, version=version)
        obj = server.kubectl_json("get", kind, name, "-n", namespace)
        assert check(obj), f"kubectl create {' '.join(args)} made {obj}"


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v or "dispatcher")
def test_cluster_generators(server, version):
    prefix = f"gen-{version or 'd'}".replace(".", "")
    made = []
    try:
        for args, kind, check in CLUSTER_GENERATORS:
            args = tuple(a.format(prefix=prefix) for a in args)
            server.kubectl("create", *args, version=version)
            made.append((kind, args[1]))
            obj = server.kubectl_json("get", kind, args[1])
            assert check(obj), f"kubectl create {' '.join(args)} made {obj}"
    finally:
        for kind, name in made:
            server.kubectl("delete", kind, name, "--wait=false", check=False)


def test_autoscale_and_token(server, namespace):
    server.kubectl("create", "deployment", "scaled", "--image=nginx", "-n", namespace)
    server.kubectl("autoscale", "deployment", "scaled", "--min=2", "--max=5", "--cpu-percent=70", "-n", namespace)
    hpa = server.kubectl_json("get", "hpa", "scaled", "-n", namespace)
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"}
    v2 = server.kubectl_json("get", "hpa.v2.autoscaling", "scaled", "-n", namespace)
    assert v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    token = server.kubectl("create", "token", "default", "-n", namespace, "--audience=vault").stdout.strip()
    assert token.count(".") == 2
