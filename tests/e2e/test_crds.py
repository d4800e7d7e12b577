"""CustomResourceDefinitions with the real kubectl."""

from __future__ import annotations

import json

from tests.e2e.conftest import REPO, wait_for

DATA = REPO / "tests" / "data" / "crd"


def test_crd_serves_validates_prints_and_cleans_up(server, namespace):
    server.kubectl("apply", "-f", str(DATA / "crontab-crd.yaml"))
    crd = "crontabs.stable.example.com"
    wait_for(lambda: "Established" in server.kubectl(
        "get", "crd", crd, "-o", "jsonpath={.status.conditions[*].type}").stdout, timeout=5, what="Established")
    assert "crontabs" in server.kubectl("api-resources", "--api-group=stable.example.com").stdout

    server.kubectl("apply", "-n", namespace, "-f", str(DATA / "crontab.yaml"))
    table = server.kubectl("get", "ct", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert table[1].split()[:4] == ["my-new-cron-object", "*", "*", "*"]
    assert "FIELD: spec <Object>" in server.kubectl("explain", "crontab.spec").stdout

    # Unknown fields are pruned (with a warning); wrong types are refused.
    pruned = server.kubectl("patch", "ct", "my-new-cron-object", "-n", namespace, "--type=merge",
                            "-p", '{"spec":{"bogus":1}}')
    assert 'unknown field "spec.bogus"' in pruned.stderr
    assert "bogus" not in server.kubectl_json("get", "ct", "my-new-cron-object", "-n", namespace)["spec"]
    wrong = server.kubectl("patch", "ct", "my-new-cron-object", "-n", namespace, "--type=merge",
                           "-p", '{"spec":{"replicas":"x"}}', check=False)
    assert wrong.returncode != 0 and "spec.replicas" in wrong.stderr
    # Status is a subresource: a main-resource write can't set it; generation follows spec.
    server.kubectl("patch", "ct", "my-new-cron-object", "-n", namespace, "--type=merge",
                   "-p", '{"spec":{"replicas":3},"status":{"ready":true}}')
    got = server.kubectl_json("get", "ct", "my-new-cron-object", "-n", namespace)
    assert got["spec"]["replicas"] == 3 and "status" not in got and got["metadata"]["generation"] == 2
    smp = server.kubectl("patch", "ct", "my-new-cron-object", "-n", namespace, "-p", '{"spec":{"replicas":4}}',
                         check=False)
    assert smp.returncode != 0 and "application/strategic-merge-patch+json is not supported" in smp.stderr

    server.kubectl("delete", "crd", crd)
    assert server.kubectl("get", "crd", crd, check=False).returncode == 1
    assert "crontabs" not in server.kubectl("api-resources").stdout


SCALABLE_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.scale.example.com}
spec:
  group: scale.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.size, statusReplicasPath: .status.ready, labelSelectorPath: .status.selector}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {ready: {type: integer}, selector: {type: string}}}
"""


def test_crd_scale_subresource_uses_the_declared_paths(server, namespace):
    server.kubectl("apply", "-f", "-", input=SCALABLE_CRD)
    wait_for(lambda: "widgets" in server.kubectl("api-resources", "--api-group=scale.example.com").stdout,
             timeout=5, what="widgets served")
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input="apiVersion: scale.example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n")
    server.kubectl("patch", "widget", "w", "-n", namespace, "--subresource=status", "--type=merge",
                   "-p", '{"status":{"ready":1,"selector":"app=w"}}')
    assert "widget.scale.example.com/w scaled" in server.kubectl("scale", "widget", "w", "-n", namespace,
                                                                  "--replicas=4").stdout
    assert server.kubectl_json("get", "widget", "w", "-n", namespace)["spec"]["size"] == 4
    scale = json.loads(server.kubectl(
        "get", "--raw", f"/apis/scale.example.com/v1/namespaces/{namespace}/widgets/w/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 4}
    assert scale["status"] == {"replicas": 1, "selector": "app=w"}
    server.kubectl("delete", "crd", "widgets.scale.example.com")
