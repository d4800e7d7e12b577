"""CustomResourceDefinitions with the real kubectl."""

from __future__ import annotations

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
