"""Pure kubelet rules: $(VAR) expansion, env, QoS, back-off, phases, DNS files."""

from __future__ import annotations

import base64

import pytest

from k8py.kubelet import qos
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.env import ContainerConfigError, EnvSources, container_env, expand_command
from k8py.kubelet.expansion import expand
from k8py.kubelet.pod_dns import ClusterDNS, hosts_file, resolv_conf
from k8py.kubelet.pod_worker import go_duration
from k8py.kubelet.status import pod_phase


def test_expansion_rules():
    env = {"A": "1", "B": "two"}
    assert expand("$(A)-$(B)", env) == "1-two"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$$", env) == "$"
    assert expand("a$b", env) == "a$b"
    assert expand("$(A", env) == "$(A"
    assert expand("$()", env) == "$()"


def sources(config_maps=None, secrets=None, **kw):
    async def cm(ns, name):
        return (config_maps or {}).get(name)

    async def sec(ns, name):
        return (secrets or {}).get(name)
    return EnvSources(cm, sec, node_allocatable={"cpu": "4", "memory": "8Gi"}, **kw)


POD = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"},
                    "annotations": {"note": "hi"}},
       "spec": {"nodeName": "n1", "serviceAccountName": "sa",
                "containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"},
                                                           "requests": {"cpu": "250m"}}}]},
       "status": {"podIP": "10.42.0.7", "hostIP": "192.168.1.2"}}


async def test_env_sources_and_order():
    cms = {"cfg": {"data": {"LANG": "en", "bad=key": "x"}}}
    secrets = {"s": {"data": {"pw": base64.b64encode(b"hunter2").decode()}}}
    container = {"name": "c",
                 "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                             {"secretRef": {"name": "absent", "optional": True}}],
                 "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                         {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope",
                                                                           "optional": True}}},
                         {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                         {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                         {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                         {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
                         {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                         {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                         {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                            "divisor": "1Mi"}}},
                         {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                         {"name": "CPU_REQ", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu",
                                                                                "divisor": "1m"}}},
                         {"name": "MSG", "value": "$(CFG_LANG) on $(NODE)"}],
                 "command": ["echo", "$(MSG)"], "args": ["$$(PW)"]}
    env = dict(await container_env(POD, container, sources(cms, secrets)))
    assert env["CFG_LANG"] == "en" and "CFG_bad=key" not in env
    assert "OPT" not in env
    assert (env["PW"], env["NODE"], env["SA"], env["IP"], env["HOST"], env["APP"], env["UID"]) == \
        ("hunter2", "n1", "sa", "10.42.0.7", "192.168.1.2", "x", "u1")
    assert (env["MEM"], env["CPU_LIMIT"], env["CPU_REQ"]) == ("64", "4", "250")
    assert env["MSG"] == "en on n1"
    assert expand_command(container, list(env.items())) == (["echo", "en on n1"], ["$(PW)"])


@pytest.mark.parametrize("env,message", [
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}], 'configmap "gone" not found'),
    ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}],
     "couldn't find key k in ConfigMap ns/cfg"),
    ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}], 'secret "s" not found'),
])
async def test_missing_references_are_config_errors(env, message):
    with pytest.raises(ContainerConfigError) as e:
        await container_env(POD, {"name": "c", "env": env}, sources({"cfg": {"data": {}}}))
    assert str(e.value) == message


async def test_service_links_and_kubernetes_service():
    svc = {"metadata": {"name": "my-svc"}, "spec": {"clusterIP": "10.43.0.20",
                                                     "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
    kube = {"metadata": {"name": "kubernetes"}, "spec": {"clusterIP": "10.43.0.1",
                                                         "ports": [{"name": "https", "port": 443}]}}
    env = dict(await container_env(POD, {"name": "c"}, sources(services=[svc], master_services=[kube])))
    assert env["MY_SVC_SERVICE_HOST"] == "10.43.0.20" and env["MY_SVC_PORT_80_TCP"] == "tcp://10.43.0.20:80"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and env["KUBERNETES_SERVICE_PORT"] == "443"
    no_links = {**POD, "spec": {**POD["spec"], "enableServiceLinks": False}}
    env = dict(await container_env(no_links, {"name": "c"}, sources(services=[svc], master_services=[kube])))
    assert "MY_SVC_SERVICE_HOST" not in env and env["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"


def _pod(*resources):
    return {"spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(resources)]}}


def test_qos_classes():
    assert qos.qos_class(_pod({})) == "BestEffort"
    full = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}
    assert qos.qos_class(_pod(full, {"limits": {"cpu": "500m", "memory": "64Mi"}})) == "Guaranteed"
    assert qos.qos_class(_pod(full, {})) == "Burstable"
    assert qos.qos_class(_pod({"requests": {"cpu": "100m"}})) == "Burstable"
    assert qos.qos_class(_pod({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})) == \
        "Burstable"


def test_back_off_doubles_to_the_cap_and_expires():
    now = [1000.0]
    b = Backoff(initial=10, maximum=300, clock=lambda: now[0])
    assert not b.in_backoff_since("k", now[0])
    delays = []
    for _ in range(7):
        b.next("k")
        delays.append(b.delay("k"))
    assert delays == [10, 20, 40, 80, 160, 300, 300]
    assert b.in_backoff_since("k", now[0] - 299)
    assert not b.in_backoff_since("k", now[0] - 301)
    now[0] += 601
    b.next("k")
    assert b.delay("k") == 10
    assert [go_duration(x) for x in (10, 80, 160, 300)] == ["10s", "1m20s", "2m40s", "5m0s"]


def cs(state, last=None):
    return {"state": state, "lastState": last or {}}


def test_phase_rules():
    always = {"spec": {"restartPolicy": "Always"}}
    never = {"spec": {"restartPolicy": "Never"}}
    on_failure = {"spec": {"restartPolicy": "OnFailure"}}
    running, ok, bad = {"running": {}}, {"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 1}}
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    crash = cs({"waiting": {"reason": "CrashLoopBackOff"}}, {"terminated": {"exitCode": 1}})
    assert pod_phase(always, [], [cs(waiting)]) == "Pending"
    assert pod_phase(always, [cs(running)], [cs(waiting)]) == "Pending"
    assert pod_phase(always, [], [cs(running), cs(ok)]) == "Running"
    assert pod_phase(always, [], [crash]) == "Running"
    assert pod_phase(never, [], [cs(ok), cs(bad)]) == "Failed"
    assert pod_phase(on_failure, [], [cs(ok)]) == "Succeeded"
    assert pod_phase(on_failure, [], [cs(bad)]) == "Running"
    assert pod_phase(never, [cs(bad)], [cs(waiting)]) == "Failed"
    assert pod_phase(always, [], [cs(bad)], terminal=True) == "Failed"
    assert pod_phase(always, [], [cs(ok)], terminal=True) == "Succeeded"


def test_resolv_conf_per_dns_policy(tmp_path):
    host = tmp_path / "resolv.conf"
    host.write_text("nameserver 192.168.1.1\nsearch example.com\noptions edns0\n")
    dns = ClusterDNS(servers=["10.43.0.10"], domain="cluster.local", host_resolv_conf=host)
    pod = {"metadata": {"namespace": "team"}, "spec": {}}
    assert resolv_conf(pod, dns) == ("search team.svc.cluster.local svc.cluster.local cluster.local example.com\n"
                                     "nameserver 10.43.0.10\noptions ndots:5\n")
    assert resolv_conf({**pod, "spec": {"dnsPolicy": "Default"}}, dns) == \
        "search example.com\nnameserver 192.168.1.1\noptions edns0\n"
    assert "192.168.1.1" in resolv_conf({**pod, "spec": {"hostNetwork": True}}, dns)
    assert "10.43.0.10" in resolv_conf({**pod, "spec": {"hostNetwork": True,
                                                          "dnsPolicy": "ClusterFirstWithHostNet"}}, dns)
    custom = {"dnsPolicy": "None", "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["a.b"],
                                                 "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}}
    assert resolv_conf({**pod, "spec": custom}, dns) == "search a.b\nnameserver 1.1.1.1\noptions ndots:2 rotate\n"


def test_hosts_file_with_subdomain_and_aliases():
    pod = {"metadata": {"name": "web-0", "namespace": "ns"},
           "spec": {"hostname": "web-0", "subdomain": "web",
                    "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["foo.local", "bar.local"]}]}}
    text = hosts_file(pod, ["10.42.0.9"], "cluster.local")
    assert text.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert "10.42.0.9\tweb-0.web.ns.svc.cluster.local\tweb-0\n" in text
    assert text.endswith("# Entries added by HostAliases.\n1.2.3.4\tfoo.local\tbar.local\n")
