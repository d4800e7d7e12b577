"""Built-in admission, the subset of upstream's default plugins that shapes
what users see on every cluster:

- NamespaceLifecycle: no new objects in missing or terminating namespaces;
- ServiceAccount (serviceaccount_admission.py): pods run as an existing service
  account and get its token volume;
- DefaultTolerationSeconds (default_tolerations.py): pods tolerate not-ready/unreachable
  nodes 300 s;
- Priority: pods get the numeric priority of their PriorityClass;
- RuntimeClass: a pod's RuntimeClass must exist; its overhead and scheduling
  constraints are copied into the pod;
- LimitRanger (limitranger.py): default requests and limits, and ranges.
"""

from __future__ import annotations

from k8py.api.registry import Resource
from k8py.apimachinery import errors
from k8py.apiserver import default_tolerations, limitranger

# Objects that may still be written into a namespace being deleted, so that
# controllers can report what happens during the teardown.
_ALLOWED_IN_TERMINATING = {("", "Event"), ("events.k8s.io", "Event")}
BUILTIN_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}


def check_namespace_open(api, resource: Resource, obj: dict) -> None:
    if not resource.namespaced:
        return
    m = obj["metadata"]
    namespace = m.get("namespace", "")
    ns = api.namespace(namespace)
    if ns is None:
        raise errors.not_found("namespaces", namespace)
    terminating = (ns.get("metadata") or {}).get("deletionTimestamp") or \
        (ns.get("status") or {}).get("phase") == "Terminating"
    if terminating and (resource.group, resource.kind) not in _ALLOWED_IN_TERMINATING:
        raise errors.StatusError(
            403, "Forbidden",
            f'{resource.group_resource} "{m.get("name", "")}" is forbidden: unable to create new content in '
            f"namespace {namespace} because it is being terminated",
            name=m.get("name", ""), group=resource.group, kind=resource.plural)


def admit_pod(api, pod: dict) -> None:
    pod.setdefault("spec", {})
    default_tolerations.admit_pod(api, pod)
    _admit_priority(api, pod)
    _admit_runtime_class(api, pod)
    limitranger.admit_pod(api, pod)


def _forbidden_pod(pod: dict, reason: str) -> errors.StatusError:
    name = pod["metadata"].get("name", "")
    return errors.StatusError(403, "Forbidden", f'pods "{name}" is forbidden: {reason}', name=name, kind="pods")


def _admit_runtime_class(api, pod: dict) -> None:
    spec = pod["spec"]
    class_name = spec.get("runtimeClassName")
    if not class_name:
        return
    cached = api.objects_for("node.k8s.io", "v1", "runtimeclasses").get_cached("", class_name)
    if cached is None:
        raise _forbidden_pod(pod, f'pod rejected: RuntimeClass "{class_name}" not found')
    runtime_class = cached.obj
    fixed = (runtime_class.get("overhead") or {}).get("podFixed")
    if fixed:
        if spec.get("overhead") and spec["overhead"] != fixed:
            raise _forbidden_pod(pod, "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead")
        spec["overhead"] = dict(fixed)
    scheduling = runtime_class.get("scheduling") or {}
    for key, value in (scheduling.get("nodeSelector") or {}).items():
        selector = spec.setdefault("nodeSelector", {})
        if key in selector and selector[key] != value:
            raise _forbidden_pod(pod, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                                      f"pod.spec.nodeSelector[{key}] = {selector[key]}")
        selector[key] = value
    tolerations = spec.setdefault("tolerations", []) if scheduling.get("tolerations") else None
    for toleration in scheduling.get("tolerations") or []:
        if toleration not in tolerations:
            tolerations.append(toleration)


def _admit_priority(api, pod: dict) -> None:
    spec = pod["spec"]
    class_name = spec.get("priorityClassName")
    if not class_name:
        default = api.default_priority_class()
        if default is None:
            spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
            return
        class_name = spec["priorityClassName"] = default["metadata"]["name"]
    if class_name in BUILTIN_PRIORITIES:
        value, policy = BUILTIN_PRIORITIES[class_name], "PreemptLowerPriority"
    else:
        pc = api.priority_class(class_name)
        if pc is None:
            name = pod["metadata"].get("name", "")
            raise errors.StatusError(403, "Forbidden",
                                     f'pods "{name}" is forbidden: no PriorityClass with name {class_name} was found',
                                     name=name, kind="pods")
        value, policy = pc.get("value", 0), pc.get("preemptionPolicy", "PreemptLowerPriority")
    if spec.get("priority") is not None and spec["priority"] != value:
        name = pod["metadata"].get("name", "")
        raise errors.StatusError(403, "Forbidden",
                                 f'pods "{name}" is forbidden: the integer value of priority ({spec["priority"]}) '
                                 f"must not be provided in pod spec; priority admission controller computed "
                                 f"{value} from the given PriorityClass name", name=name, kind="pods")
    spec["priority"] = value
    spec.setdefault("preemptionPolicy", policy)
