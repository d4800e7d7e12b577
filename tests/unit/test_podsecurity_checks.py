"""The Pod Security Standards checks: each passes a conforming pod and fails a
violating one with upstream's words, at the levels and versions it applies to."""

from __future__ import annotations

import copy

import pytest

from k8py.apiserver.podsecurity.evaluator import NEWEST_MINOR, evaluate
from k8py.apiserver.podsecurity.policy import LevelVersion

RESTRICTED_OK = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "c", "image": "busybox", "securityContext": {
        "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}],
    "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}],
}


def spec(*changes) -> dict:
    """RESTRICTED_OK with `changes` applied: (path, value) pairs, dotted paths,
    `containers.0` for list items; value None deletes."""
    out = copy.deepcopy(RESTRICTED_OK)
    for path, value in changes:
        node, parts = out, path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return out


def check(level: str, pod_spec: dict, minor: int | None = None, annotations: dict | None = None) -> str:
    """'' when allowed, else upstream's violation text."""
    result = evaluate(LevelVersion(level, minor), {"annotations": annotations or {}}, pod_spec)
    return "" if result.allowed else result.details()


def test_conforming_pod_passes_every_level_and_version():
    for minor in (0, 8, 19, 22, 23, 25, 27, 29, 31, 32, 40, None):
        for level in ("privileged", "baseline", "restricted"):
            assert check(level, spec(), minor) == "", (level, minor)


def test_privileged_level_allows_anything():
    bad = spec(("hostNetwork", True), ("containers.0.securityContext.privileged", True))
    assert check("privileged", bad) == ""
    assert check("baseline", bad) != ""


# (name, changes, annotations, expected baseline text, expected restricted text)
BASELINE_CASES = [
    ("hostNamespaces", [("hostNetwork", True), ("hostPID", True), ("hostIPC", True)], None,
     "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)"),
    ("privileged", [("containers.0.securityContext.privileged", True)], None,
     'privileged (container "c" must not set securityContext.privileged=true)'),
    ("capabilities", [("containers.0.securityContext.capabilities", {"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]})],
     None, 'non-default capabilities (container "c" must not include "NET_RAW", "SYS_ADMIN" in '
           'securityContext.capabilities.add)'),
    ("hostPath", [("volumes", [{"name": "host", "hostPath": {"path": "/"}}])], None,
     'hostPath volumes (volume "host")'),
    ("hostPorts", [("containers.0.ports", [{"containerPort": 80, "hostPort": 8080},
                                           {"containerPort": 81, "hostPort": 10000}])], None,
     'hostPort (container "c" uses hostPorts 10000, 8080)'),
    ("appArmor", [("securityContext.appArmorProfile", {"type": "Unconfined"})],
     {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"},
     'forbidden AppArmor profiles (pod and annotation must not set AppArmor profile type to "Unconfined", '
     '"container.apparmor.security.beta.kubernetes.io/c="unconfined"")'),
    ("seLinux", [("containers.0.securityContext.seLinuxOptions", {"type": "spc_t", "user": "root"})], None,
     'seLinuxOptions (container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; '
     'user may not be set)'),
    ("procMount", [("containers.0.securityContext.procMount", "Unmasked")], None,
     'procMount (container "c" must not set securityContext.procMount to "Unmasked")'),
    ("seccomp", [("securityContext.seccompProfile", {"type": "Unconfined"})], None,
     'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'),
    ("sysctls", [("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "1"},
                                              {"name": "net.ipv4.tcp_syncookies", "value": "1"}])], None,
     "forbidden sysctls (kernel.msgmax)"),
    ("hostProcess", [("containers.0.securityContext.windowsOptions", {"hostProcess": True})], None,
     'hostProcess (container "c" must not set securityContext.windowsOptions.hostProcess=true)'),
]


@pytest.mark.parametrize("name,changes,annotations,expected", BASELINE_CASES, ids=[c[0] for c in BASELINE_CASES])
def test_baseline_checks_fail_at_baseline_and_restricted(name, changes, annotations, expected):
    bad = spec(*changes)
    assert check("baseline", bad, annotations=annotations) == expected
    restricted = check("restricted", bad, annotations=annotations)
    if name in ("hostPath", "capabilities"):
        # restricted replaces these with its stricter check (restrictedVolumes, capabilities_restricted)
        assert restricted and expected not in restricted
    else:
        assert expected in restricted


def test_restricted_volume_check_replaces_hostpath_check():
    bad = spec(("volumes", [{"name": "host", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {"server": "x"}},
                            {"name": "ok", "secret": {"secretName": "s"}}]))
    assert check("restricted", bad) == \
        'restricted volume types (volumes "host", "n" use restricted volume types "hostPath", "nfs")'
    one = spec(("volumes", [{"name": "g", "gitRepo": {"repository": "x"}}]))
    assert check("restricted", one) == 'restricted volume types (volume "g" uses restricted volume type "gitRepo")'
    assert check("baseline", one) == ""


RESTRICTED_CASES = [
    ("allowPrivilegeEscalation", [("containers.0.securityContext.allowPrivilegeEscalation", None)],
     'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false)'),
    ("dropAll", [("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]})],
     'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"])'),
    ("addOnlyNetBind", [("containers.0.securityContext.capabilities",
                         {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CHOWN"]})],
     'unrestricted capabilities (container "c" must not include "CHOWN" in securityContext.capabilities.add)'),
    ("runAsNonRootUnset", [("securityContext.runAsNonRoot", None)],
     'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)'),
    ("runAsNonRootFalse", [("containers.0.securityContext.runAsNonRoot", False)],
     'runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)'),
    ("runAsUser0", [("securityContext.runAsUser", 0)], "runAsUser=0 (pod must not set runAsUser=0)"),
    ("seccompRequired", [("securityContext.seccompProfile", None)],
     'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
     'or "Localhost")'),
]


@pytest.mark.parametrize("name,changes,expected", RESTRICTED_CASES, ids=[c[0] for c in RESTRICTED_CASES])
def test_restricted_checks_fail_only_at_restricted(name, changes, expected):
    bad = spec(*changes)
    assert check("restricted", bad) == expected
    assert check("baseline", bad) == ""


def test_netbind_alone_is_allowed_and_container_level_settings_count():
    ok = spec(("containers.0.securityContext.capabilities", {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
              ("securityContext", {}), ("containers.0.securityContext.runAsNonRoot", True),
              ("containers.0.securityContext.seccompProfile", {"type": "Localhost", "localhostProfile": "p"}))
    assert check("restricted", ok) == ""


def test_every_container_kind_is_checked_and_names_pluralise():
    bad = spec(("initContainers", [{"name": "init", "image": "b", "securityContext": {"privileged": True}}]),
               ("ephemeralContainers", [{"name": "debug", "image": "b", "securityContext": {"privileged": True}}]))
    assert check("baseline", bad) == \
        'privileged (containers "init", "debug" must not set securityContext.privileged=true)'


def test_violations_are_listed_in_upstream_order():
    plain = {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]}
    assert check("restricted", plain) == (
        'privileged (container "c" must not set securityContext.privileged=true), '
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
        'or "Localhost")')


# ---- versions --------------------------------------------------------------------

def test_checks_added_in_later_versions_do_not_apply_to_older_ones():
    root = spec(("securityContext.runAsUser", 0))
    assert check("restricted", root, 22) == ""
    assert check("restricted", root, 23) == "runAsUser=0 (pod must not set runAsUser=0)"
    no_drop = spec(("containers.0.securityContext.capabilities", None))
    assert check("restricted", no_drop, 21) == ""
    assert "unrestricted capabilities" in check("restricted", no_drop, 22)
    escalating = spec(("containers.0.securityContext.allowPrivilegeEscalation", True))
    assert check("restricted", escalating, 7) == ""
    assert "allowPrivilegeEscalation != false" in check("restricted", escalating, 8)


def test_before_v1_22_restricted_uses_the_baseline_capabilities_check():
    adds = spec(("containers.0.securityContext.capabilities", {"add": ["SYS_ADMIN"]}))
    assert check("restricted", adds, 21) == \
        'non-default capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add)'


def test_seccomp_annotations_before_v1_19_and_fields_after():
    annotated = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
    assert check("baseline", spec(), 18, annotated) == \
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")'
    assert check("baseline", spec(), 19, annotated) == ""
    unconfined = spec(("securityContext.seccompProfile", {"type": "Unconfined"}))
    assert check("baseline", unconfined, 18) == ""
    # before v1.19 restricted did not require a profile
    assert check("restricted", spec(("securityContext.seccompProfile", None)), 18) == ""


def test_windows_pods_skip_linux_only_restricted_checks_from_v1_25():
    windows = spec(("os", {"name": "windows"}), ("securityContext.seccompProfile", None),
                   ("containers.0.securityContext", {}))
    assert check("restricted", windows, 25) == ""
    assert "allowPrivilegeEscalation != false" in check("restricted", windows, 24)


@pytest.mark.parametrize("name,since", [("net.ipv4.ip_local_reserved_ports", 27), ("net.ipv4.tcp_keepalive_time", 29),
                                        ("net.ipv4.tcp_rmem", 32)])
def test_safe_sysctls_grow_by_version(name, since):
    pod = spec(("securityContext.sysctls", [{"name": name, "value": "1"}]))
    assert check("baseline", pod, since - 1) == f"forbidden sysctls ({name})"
    assert check("baseline", pod, since) == ""
    assert check("baseline", pod) == ""


def test_container_engine_selinux_type_allowed_from_v1_31():
    pod = spec(("securityContext.seLinuxOptions", {"type": "container_engine_t"}))
    assert check("baseline", pod, 30) == \
        'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "container_engine_t")'
    assert check("baseline", pod, 31) == ""


def test_future_versions_evaluate_as_the_newest():
    pod = spec(("securityContext.runAsUser", 0))
    assert check("restricted", pod, NEWEST_MINOR + 10) == check("restricted", pod, None) != ""
