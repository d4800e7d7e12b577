"""The PodSecurity admission plugin: namespaces' policies applied to writes.

As upstream's built-in plugin (validating, on create and update):
- pods: the enforce level refuses (403), the audit level annotates the audit
  event, the warn level answers with a warning;
- workload resources (their pod template): audit and warn only;
- namespaces: bad policy labels are refused (422); raising the enforce level
  warns about existing pods that would violate it.
Exempt users, namespaces and runtime classes are let through (and say so in
the audit annotations).
"""

from __future__ import annotations

import time

from k8py.api.registry import Resource
from k8py.apimachinery import errors
from k8py.apiserver import request_context
from k8py.apiserver.podsecurity import evaluator
from k8py.apiserver.podsecurity.config import Configuration
from k8py.apiserver.podsecurity.policy import (LABEL_PREFIX, MODES, PRIVILEGED, LevelVersion, Policy,
                                               compare_levels, policy_from_labels)

AUDIT_ANNOTATION_PREFIX = LABEL_PREFIX  # pod-security.kubernetes.io/<key>
ENFORCE_POLICY = "enforce-policy"
AUDIT_VIOLATIONS = "audit-violations"
EXEMPT = "exempt"

# Pod subresources that cannot change what the pod runs.
IGNORED_POD_SUBRESOURCES = frozenset({"exec", "attach", "binding", "eviction", "log", "portforward", "proxy",
                                      "status"})
# Where each workload resource keeps its pod template.
TEMPLATE_PATHS = {
    ("", "replicationcontrollers"): ("spec", "template"),
    ("", "podtemplates"): ("template",),
    ("apps", "replicasets"): ("spec", "template"),
    ("apps", "deployments"): ("spec", "template"),
    ("apps", "statefulsets"): ("spec", "template"),
    ("apps", "daemonsets"): ("spec", "template"),
    ("batch", "jobs"): ("spec", "template"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template"),
}
# Raising a namespace's enforce level checks at most this many of its pods, for at most this long.
NAMESPACE_MAX_PODS = 3000
NAMESPACE_CHECK_SECONDS = 1.0


class PodSecurity:
    def __init__(self, config: Configuration | None = None):
        self.config = config or Configuration()

    def applies_to(self, resource: Resource) -> bool:
        key = (resource.group, resource.plural)
        return key in (("", "pods"), ("", "namespaces")) or key in TEMPLATE_PATHS

    def admit(self, api, resource: Resource, obj: dict, old: dict | None = None, *, user=None,
              subresource: str = "") -> None:
        """Raises the StatusError that refuses the write; warnings and audit
        annotations go to the request context."""
        if resource.custom or not self.applies_to(resource):
            return
        key = (resource.group, resource.plural)
        if key == ("", "namespaces"):
            self._admit_namespace(api, obj, old, subresource)
            return
        if key == ("", "pods") and subresource in IGNORED_POD_SUBRESOURCES:
            return
        if key != ("", "pods") and subresource:
            return
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        if namespace in self.config.exempt_namespaces:
            _annotate({EXEMPT: "namespace"})
            return
        if user is not None and user.name and user.name in self.config.exempt_usernames:
            _annotate({EXEMPT: "user"})
            return
        ns = api.namespace(namespace)
        labels = ((ns or {}).get("metadata") or {}).get("labels")
        policy, causes = policy_from_labels(labels, self.config.defaults)
        if key == ("", "pods"):
            if not causes and policy.fully_privileged():
                _annotate({ENFORCE_POLICY: str(LevelVersion(PRIVILEGED, None))})
                return
            if old is not None and not significant_pod_update(obj, old):
                return
            self._evaluate(resource, obj, obj.get("metadata") or {}, obj.get("spec") or {}, policy, causes,
                           enforce=True)
            return
        if not causes and policy.warn.level == PRIVILEGED and policy.audit.level == PRIVILEGED:
            return
        template = _template(obj, TEMPLATE_PATHS[key])
        if template is None:
            return
        self._evaluate(resource, obj, template.get("metadata") or {}, template.get("spec") or {}, policy, causes,
                       enforce=False)

    def _evaluate(self, resource: Resource, obj: dict, metadata: dict, spec: dict, policy: Policy, causes,
                  *, enforce: bool) -> None:
        runtime_class = spec.get("runtimeClassName")
        if runtime_class and runtime_class in self.config.exempt_runtime_classes:
            _annotate({EXEMPT: "runtimeClass"})
            return
        annotations = {}
        if causes:
            annotations["error"] = "Failed to parse policy: " + _aggregate(c.describe() for c in causes)
        results: dict[LevelVersion, evaluator.Result] = {}

        def result(lv: LevelVersion) -> evaluator.Result:
            if lv not in results:
                results[lv] = evaluator.evaluate(lv, metadata, spec)
            return results[lv]
        denial = None
        if enforce:
            annotations[ENFORCE_POLICY] = str(policy.enforce)
            enforced = result(policy.enforce)
            if not enforced.allowed:
                denial = f'violates PodSecurity "{policy.enforce}": {enforced.details()}'
        audited = result(policy.audit)
        if not audited.allowed:
            annotations[AUDIT_VIOLATIONS] = f'would violate PodSecurity "{policy.audit}": {audited.details()}'
        _annotate(annotations)
        if denial is not None:
            name = (obj.get("metadata") or {}).get("name", "")
            raise errors.StatusError(403, "Forbidden", f'{resource.group_resource} "{name}" is forbidden: {denial}',
                                     name=name, group=resource.group, kind=resource.plural)
        warned = result(policy.warn)
        if not warned.allowed:
            request_context.add_warning(f'would violate PodSecurity "{policy.warn}": {warned.details()}')

    # ---- namespaces ----------------------------------------------------------

    def _admit_namespace(self, api, obj: dict, old: dict | None, subresource: str) -> None:
        if subresource:
            return
        name = (obj.get("metadata") or {}).get("name", "")
        labels = (obj.get("metadata") or {}).get("labels") or {}
        policy, causes = policy_from_labels(labels, self.config.defaults)
        if old is None:
            if causes:
                raise errors.invalid("Namespace", name, causes)
            if name in self.config.exempt_namespaces:
                self._warn_exempt_namespace(name, policy, labels)
            return
        old_policy, old_causes = policy_from_labels((old.get("metadata") or {}).get("labels"),
                                                    self.config.defaults)
        if causes and (not old_causes or [c.describe() for c in causes] != [c.describe() for c in old_causes]):
            raise errors.invalid("Namespace", name, causes)
        new, before = policy.enforce, old_policy.enforce
        if new == before or new.level == PRIVILEGED:
            return
        if new.minor == before.minor and compare_levels(new.level, before.level) < 1:
            return  # same version, level relaxed
        if name in self.config.exempt_namespaces:
            self._warn_exempt_namespace(name, policy, labels)
            return
        for warning in self.existing_pod_warnings(api, name, new):
            request_context.add_warning(warning)

    def _warn_exempt_namespace(self, name: str, policy: Policy, labels: dict) -> None:
        if policy.fully_privileged() or policy.equivalent(self.config.defaults):
            return
        shown = []
        for mode in MODES:
            lv = getattr(policy, mode)
            if lv.level != PRIVILEGED and (LABEL_PREFIX + mode in labels or LABEL_PREFIX + mode + "-version" in labels):
                shown.append(f"{mode}={lv}")
        request_context.add_warning(f'namespace "{name}" is exempt from Pod Security, and the policy '
                                    f'({", ".join(shown)}) will be ignored')

    def existing_pod_warnings(self, api, namespace: str, enforce: LevelVersion) -> list[str]:
        """Upstream's summary of the namespace's pods the new enforce level
        would refuse: one line per distinct set of reasons, naming the first
        pod (by name) and how many others share it."""
        store = api.objects_for("", "v1", "pods")
        pods = self._prioritized([c.obj for c in store.cache.list(store.resource.key_prefix(namespace))[0]])
        total, pods = len(pods), pods[:NAMESPACE_MAX_PODS]
        checked = len(pods)
        deadline = time.monotonic() + NAMESPACE_CHECK_SECONDS
        seen: dict[str, list] = {}  # reasons -> [first pod name, count]
        for i, pod in enumerate(pods):
            result = evaluator.evaluate(enforce, pod.get("metadata") or {}, pod.get("spec") or {})
            if not result.allowed:
                pod_name = pod["metadata"].get("name", "")
                entry = seen.setdefault(result.reasons(), [pod_name, 0])
                entry[0] = min(entry[0], pod_name)
                entry[1] += 1
            if time.monotonic() > deadline:
                checked = i + 1
                break
        warnings = []
        if checked < total:
            warnings.append(f"new PodSecurity enforce level only checked against the first {checked} of "
                            f"{total} existing pods")
        if seen:
            warnings.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce '
                            f'level "{enforce}"')
        per_reason = []
        for reasons, (first, count) in seen.items():
            if count == 1:
                per_reason.append(f"{first}: {reasons}")
            elif count == 2:
                per_reason.append(f"{first} (and 1 other pod): {reasons}")
            else:
                per_reason.append(f"{first} (and {count - 1} other pods): {reasons}")
        return warnings + sorted(per_reason)

    def _prioritized(self, pods: list[dict]) -> list[dict]:
        """Exempt runtime classes left out; one pod per controller first, its
        replicas after, so a capped check sees as many workloads as it can."""
        first, replicas, controllers = [], [], set()
        for pod in pods:
            if (pod.get("spec") or {}).get("runtimeClassName") in self.config.exempt_runtime_classes:
                continue
            owner = next((ref for ref in (pod["metadata"].get("ownerReferences") or [])
                          if isinstance(ref, dict) and ref.get("controller")), None)
            if owner is None or owner.get("uid") not in controllers:
                first.append(pod)
                if owner is not None:
                    controllers.add(owner.get("uid"))
            else:
                replicas.append(pod)
        return first + replicas


def significant_pod_update(new: dict, old: dict) -> bool:
    """Only images (and added ephemeral containers) can change what an
    existing pod runs; other updates are not re-evaluated."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    for key in ("containers", "initContainers"):
        now, before = new_spec.get(key) or [], old_spec.get(key) or []
        if len(now) != len(before):
            return True
        if any((a or {}).get("image") != (b or {}).get("image") for a, b in zip(now, before)):
            return True
    old_ephemeral = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or [] if isinstance(c, dict)}
    for container in new_spec.get("ephemeralContainers") or []:
        if not isinstance(container, dict):
            continue
        before = old_ephemeral.get(container.get("name"))
        if before is None or before.get("image") != container.get("image"):
            return True
    return False


def _template(obj: dict, path: tuple[str, ...]) -> dict | None:
    node = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def _aggregate(texts) -> str:
    texts = list(dict.fromkeys(texts))
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"


def _annotate(annotations: dict[str, str]) -> None:
    for key, value in annotations.items():
        request_context.add_audit_annotation(AUDIT_ANNOTATION_PREFIX + key, value)
