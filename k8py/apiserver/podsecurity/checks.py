"""The Pod Security Standards as checks, worded as upstream's.

A check looks at a pod's metadata and spec (plain dicts, as stored) and
returns None when the pod passes, or a `Violation`: a short reason always
shown and a detail naming the containers, volumes or values at fault.

`CHECKS` at the bottom is the table the evaluator reads: per check its ID,
its level and, per policy version (the minor of v1.x) from which it applies,
the function and the baseline checks a restricted one replaces. The values
that changed between versions (safe sysctls, SELinux types) are tables too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

from k8py.api.fieldcheck import go_quote

BASELINE, RESTRICTED = "baseline", "restricted"


@dataclass(frozen=True)
class Violation:
    reason: str
    detail: str = ""


CheckFn = Callable[[dict, dict], "Violation | None"]


@dataclass(frozen=True)
class VersionedCheck:
    since: int  # first policy version v1.<since> this function applies to
    check: CheckFn
    overrides: tuple[str, ...] = ()  # baseline check IDs this one replaces


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    versions: tuple[VersionedCheck, ...]


# ---- helpers --------------------------------------------------------------------

def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _quoted(items) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _named(noun: str, names: list[str]) -> str:
    """`container "a"` or `containers "a", "b"`."""
    return f"{_plural(noun, noun + 's', len(names))} {_quoted(names)}"


def _containers(spec: dict) -> Iterator[dict]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                yield container


def _security_context(obj: dict) -> dict:
    ctx = obj.get("securityContext")
    return ctx if isinstance(ctx, dict) else {}


def _sub(obj: dict, key: str) -> dict | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _windows(spec: dict) -> bool:
    return ((spec.get("os") or {}).get("name")) == "windows"


def _not_on_windows(check: CheckFn) -> CheckFn:
    """From v1.25 some restricted checks do not apply to Windows pods."""
    def checked(metadata: dict, spec: dict):
        return None if _windows(spec) else check(metadata, spec)
    return checked


def _setters(pod_bad: bool, containers: list[str]) -> list[str]:
    setters = ["pod"] if pod_bad else []
    if containers:
        setters.append(_named("container", containers))
    return setters


# ---- baseline --------------------------------------------------------------------

def host_namespaces(metadata: dict, spec: dict):
    used = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field) is True]
    return Violation("host namespaces", ", ".join(used)) if used else None


def privileged(metadata: dict, spec: dict):
    bad = [c.get("name", "") for c in _containers(spec) if _security_context(c).get("privileged") is True]
    if bad:
        return Violation("privileged", f"{_named('container', bad)} must not set securityContext.privileged=true")
    return None


BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def capabilities_baseline(metadata: dict, spec: dict):
    bad, forbidden = [], set()
    for c in _containers(spec):
        capabilities = _sub(_security_context(c), "capabilities")
        if capabilities is None:
            continue
        extra = [str(cap) for cap in capabilities.get("add") or [] if cap not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(c.get("name", ""))
            forbidden.update(extra)
    if bad:
        return Violation("non-default capabilities", f"{_named('container', bad)} must not include "
                                                     f"{_quoted(sorted(forbidden))} in securityContext.capabilities.add")
    return None


def host_path_volumes(metadata: dict, spec: dict):
    bad = [v.get("name", "") for v in spec.get("volumes") or [] if isinstance(v, dict) and v.get("hostPath") is not None]
    return Violation("hostPath volumes", _named("volume", bad)) if bad else None


def host_ports(metadata: dict, spec: dict):
    bad, ports = [], set()
    for c in _containers(spec):
        used = [p.get("hostPort") for p in c.get("ports") or [] if isinstance(p, dict) and p.get("hostPort")]
        if used:
            bad.append(c.get("name", ""))
            ports.update(str(p) for p in used)
    if bad:
        # the ports are sorted as strings, as upstream's string set does
        return Violation("hostPort", f"{_named('container', bad)} {_plural('uses', 'use', len(bad))} "
                                     f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}")
    return None


_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"


def _apparmor_annotation_allowed(value: str) -> bool:
    return not value or value == "runtime/default" or value.startswith("localhost/")


def apparmor_profile(metadata: dict, spec: dict):
    allowed_types = ("RuntimeDefault", "Localhost")
    setters, values = [], set()
    pod_profile = _sub(_security_context(spec), "appArmorProfile")
    if pod_profile is not None and pod_profile.get("type") not in allowed_types:
        setters.append("pod")
        values.add(str(pod_profile.get("type") or ""))
    bad = []
    for c in _containers(spec):
        profile = _sub(_security_context(c), "appArmorProfile")
        if profile is not None and profile.get("type") not in allowed_types:
            bad.append(c.get("name", ""))
            values.add(str(profile.get("type") or ""))
    if bad:
        setters.append(_named("container", bad))
    annotations = sorted(f"{key}={go_quote(str(value))}" for key, value in (metadata.get("annotations") or {}).items()
                         if key.startswith(_APPARMOR_ANNOTATION_PREFIX)
                         and not _apparmor_annotation_allowed(str(value)))
    shown = sorted(values) + annotations
    if annotations:
        setters.append(_plural("annotation", "annotations", len(annotations)))
    if setters:
        return Violation(_plural("forbidden AppArmor profile", "forbidden AppArmor profiles", len(shown)),
                         f"{' and '.join(setters)} must not set AppArmor profile type to {_quoted(shown)}")
    return None


SELINUX_TYPES = {
    0: frozenset({"", "container_t", "container_init_t", "container_kvm_t"}),
    31: frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}),
}


def selinux_options(metadata: dict, spec: dict, allowed_types: frozenset):
    bad_types: set[str] = set()
    set_user = set_role = False

    def valid(options: dict) -> bool:
        nonlocal set_user, set_role
        ok = True
        if (options.get("type") or "") not in allowed_types:
            ok = False
            bad_types.add(options.get("type") or "")
        if options.get("user"):
            set_user = True
            ok = False
        if options.get("role"):
            set_role = True
            ok = False
        return ok

    pod_options = _sub(_security_context(spec), "seLinuxOptions")
    pod_bad = pod_options is not None and not valid(pod_options)
    bad = [c.get("name", "") for c in _containers(spec)
           if _sub(_security_context(c), "seLinuxOptions") is not None
           and not valid(_security_context(c)["seLinuxOptions"])]
    setters = _setters(pod_bad, bad)
    if not setters:
        return None
    problems = []
    if bad_types:
        problems.append(f"{_plural('type', 'types', len(bad_types))} {_quoted(sorted(bad_types))}")
    if set_user:
        problems.append("user may not be set")
    if set_role:
        problems.append("role may not be set")
    return Violation("seLinuxOptions", f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: "
                                       f"{'; '.join(problems)}")


def proc_mount(metadata: dict, spec: dict):
    bad, types = [], set()
    for c in _containers(spec):
        value = _security_context(c).get("procMount")
        if value is not None and value != "Default":
            bad.append(c.get("name", ""))
            types.add(str(value))
    if bad:
        return Violation("procMount", f"{_named('container', bad)} must not set securityContext.procMount to "
                                      f"{_quoted(sorted(types))}")
    return None


_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
_SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def seccomp_annotations(metadata: dict, spec: dict):
    """Before v1.19 seccomp was set by annotations."""
    annotations = metadata.get("annotations") or {}

    def allowed(value: str) -> bool:
        return value in ("runtime/default", "docker/default") or value.startswith("localhost/")
    keys = [_SECCOMP_POD_ANNOTATION] + [_SECCOMP_CONTAINER_ANNOTATION_PREFIX + c.get("name", "")
                                        for c in _containers(spec)]
    forbidden = sorted({f"{k}={go_quote(str(annotations[k]))}" for k in keys
                        if k in annotations and not allowed(str(annotations[k]))})
    if forbidden:
        return Violation("seccompProfile", f"forbidden {_plural('annotation', 'annotations', len(forbidden))} "
                                           f"{', '.join(forbidden)}")
    return None


def _seccomp_type(obj: dict) -> str | None:
    """The seccompProfile.type obj sets, or None when it sets no profile."""
    profile = _sub(_security_context(obj), "seccompProfile")
    return None if profile is None else str(profile.get("type") or "")


def seccomp_profile(metadata: dict, spec: dict, required: bool):
    """Baseline forbids Unconfined; restricted (`required`) also wants a profile
    on the pod or on every container."""
    values = set()
    pod_type = _seccomp_type(spec)
    pod_bad = pod_type is not None and pod_type not in _SECCOMP_TYPES
    if pod_bad:
        values.add(pod_type)
    explicit, implicit = [], []
    for c in _containers(spec):
        container_type = _seccomp_type(c)
        if container_type is None:
            if pod_type is None or pod_bad:
                implicit.append(c.get("name", ""))
        elif container_type not in _SECCOMP_TYPES:
            explicit.append(c.get("name", ""))
            values.add(container_type)
    setters = _setters(pod_bad, explicit)
    if setters:
        return Violation("seccompProfile", f"{' and '.join(setters)} must not set securityContext.seccompProfile.type "
                                           f"to {_quoted(sorted(values))}")
    if required and implicit:
        return Violation("seccompProfile", f"pod or {_named('container', implicit)} must set "
                                           f'securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"')
    return None


_SYSCTLS_1_0 = frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                          "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"})
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                                 "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
SAFE_SYSCTLS = {0: _SYSCTLS_1_0, 27: _SYSCTLS_1_27, 29: _SYSCTLS_1_29,
                32: _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}}


def sysctls(metadata: dict, spec: dict, allowed: frozenset):
    names = [str(s.get("name", "")) for s in _security_context(spec).get("sysctls") or [] if isinstance(s, dict)]
    forbidden = [n for n in names if n not in allowed]
    return Violation("forbidden sysctls", ", ".join(forbidden)) if forbidden else None


def windows_host_process(metadata: dict, spec: dict):
    def host_process(obj: dict) -> bool:
        return (_sub(_security_context(obj), "windowsOptions") or {}).get("hostProcess") is True
    setters = _setters(host_process(spec), [c.get("name", "") for c in _containers(spec) if host_process(c)])
    if setters:
        return Violation("hostProcess", f"{' and '.join(setters)} must not set "
                                        f"securityContext.windowsOptions.hostProcess=true")
    return None


# ---- restricted ------------------------------------------------------------------

def allow_privilege_escalation(metadata: dict, spec: dict):
    bad = [c.get("name", "") for c in _containers(spec)
           if _security_context(c).get("allowPrivilegeEscalation") is not False]
    if bad:
        return Violation("allowPrivilegeEscalation != false",
                         f"{_named('container', bad)} must set securityContext.allowPrivilegeEscalation=false")
    return None


def capabilities_restricted(metadata: dict, spec: dict):
    missing_drop, adding, forbidden = [], [], set()
    for c in _containers(spec):
        capabilities = _sub(_security_context(c), "capabilities")
        if capabilities is None:
            missing_drop.append(c.get("name", ""))
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(c.get("name", ""))
        extra = [str(cap) for cap in capabilities.get("add") or [] if cap != "NET_BIND_SERVICE"]
        if extra:
            adding.append(c.get("name", ""))
            forbidden.update(extra)
    details = []
    if missing_drop:
        details.append(f'{_named("container", missing_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if adding:
        details.append(f"{_named('container', adding)} must not include {_quoted(sorted(forbidden))} in "
                       f"securityContext.capabilities.add")
    return Violation("unrestricted capabilities", "; ".join(details)) if details else None


# The volume types restricted pods may use; the rest are named by their field.
RESTRICTED_VOLUME_TYPES_ALLOWED = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                   "persistentVolumeClaim", "projected", "secret")
NAMED_VOLUME_TYPES = ("hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi",
                      "glusterfs", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile",
                      "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "portworxVolume",
                      "scaleIO", "storageos")


def restricted_volumes(metadata: dict, spec: dict):
    bad, types = [], set()
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        if any(volume.get(t) is not None for t in RESTRICTED_VOLUME_TYPES_ALLOWED):
            continue
        bad.append(volume.get("name", ""))
        types.add(next((t for t in NAMED_VOLUME_TYPES if volume.get(t) is not None), "unknown"))
    if bad:
        return Violation("restricted volume types",
                         f"{_named('volume', bad)} {_plural('uses', 'use', len(bad))} "
                         f"{_plural('restricted volume type', 'restricted volume types', len(types))} "
                         f"{_quoted(sorted(types))}")
    return None


def run_as_non_root(metadata: dict, spec: dict):
    pod_value = _security_context(spec).get("runAsNonRoot")
    explicit, implicit = [], []
    for c in _containers(spec):
        value = _security_context(c).get("runAsNonRoot")
        if value is not None:
            if value is False:
                explicit.append(c.get("name", ""))
        elif pod_value is not True:
            implicit.append(c.get("name", ""))
    setters = _setters(pod_value is False, explicit)
    if setters:
        return Violation("runAsNonRoot != true",
                         f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false")
    if implicit:
        return Violation("runAsNonRoot != true",
                         f"pod or {_named('container', implicit)} must set securityContext.runAsNonRoot=true")
    return None


def run_as_user(metadata: dict, spec: dict):
    def root(obj: dict) -> bool:
        value = _security_context(obj).get("runAsUser")
        return value == 0 and not isinstance(value, bool)
    setters = _setters(root(spec), [c.get("name", "") for c in _containers(spec) if root(c)])
    if setters:
        return Violation("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0")
    return None


# ---- the table -------------------------------------------------------------------

V = VersionedCheck

CHECKS: tuple[Check, ...] = (
    Check("allowPrivilegeEscalation", RESTRICTED, (
        V(8, allow_privilege_escalation),
        V(25, _not_on_windows(allow_privilege_escalation)))),
    Check("appArmorProfile", BASELINE, (V(0, apparmor_profile),)),
    Check("capabilities_baseline", BASELINE, (V(0, capabilities_baseline),)),
    Check("capabilities_restricted", RESTRICTED, (
        V(22, capabilities_restricted, ("capabilities_baseline",)),
        V(25, _not_on_windows(capabilities_restricted), ("capabilities_baseline",)))),
    Check("hostNamespaces", BASELINE, (V(0, host_namespaces),)),
    Check("hostPathVolumes", BASELINE, (V(0, host_path_volumes),)),
    Check("hostPorts", BASELINE, (V(0, host_ports),)),
    Check("privileged", BASELINE, (V(0, privileged),)),
    Check("procMount", BASELINE, (V(0, proc_mount),)),
    Check("restrictedVolumes", RESTRICTED, (V(0, restricted_volumes, ("hostPathVolumes",)),)),
    Check("runAsNonRoot", RESTRICTED, (V(0, run_as_non_root),)),
    Check("runAsUser", RESTRICTED, (V(23, run_as_user),)),
    Check("seLinuxOptions", BASELINE, tuple(
        V(since, partial(selinux_options, allowed_types=types)) for since, types in SELINUX_TYPES.items())),
    Check("seccompProfile_baseline", BASELINE, (
        V(0, seccomp_annotations),
        V(19, partial(seccomp_profile, required=False)))),
    Check("seccompProfile_restricted", RESTRICTED, (
        V(19, partial(seccomp_profile, required=True), ("seccompProfile_baseline",)),
        V(25, _not_on_windows(partial(seccomp_profile, required=True)), ("seccompProfile_baseline",)))),
    Check("sysctls", BASELINE, tuple(
        V(since, partial(sysctls, allowed=allowed)) for since, allowed in SAFE_SYSCTLS.items())),
    Check("windowsHostProcess", BASELINE, (V(0, windows_host_process),)),
)
