"""rbac.authorization.k8s.io/v1 (pkg/apis/rbac/validation). Names are URL path segments."""

from __future__ import annotations

from k8py.api.validation import names
from k8py.api.validation.field import (GoValue, Path, d, go_quote, invalid, lst, not_supported, path,
                                       required, s)
from k8py.api.validation.meta import (selector_is_valid, validate_label_selector, validate_object_meta,
                                      validate_object_meta_update)

GROUP = "rbac.authorization.k8s.io"


def validate_policy_rule(rule: dict, namespaced: bool, fld: Path) -> list:
    errs = []
    if not lst(rule.get("verbs")):
        errs.append(required(fld.child("verbs"), "verbs must contain at least one value"))
    urls = [s(u) for u in lst(rule.get("nonResourceURLs"))]
    if urls:
        if namespaced:
            errs.append(invalid(fld.child("nonResourceURLs"), urls, "namespaced rules cannot apply to non-resource URLs"))
        if lst(rule.get("apiGroups")) or lst(rule.get("resources")) or lst(rule.get("resourceNames")):
            errs.append(invalid(fld.child("nonResourceURLs"), urls,
                                "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not lst(rule.get("apiGroups")):
        errs.append(required(fld.child("apiGroups"), "resource rules must supply at least one api group"))
    if not lst(rule.get("resources")):
        errs.append(required(fld.child("resources"), "resource rules must supply at least one resource"))
    return errs


def _rules(obj: dict, namespaced: bool) -> list:
    errs = []
    for n, rule in enumerate(lst(obj.get("rules"))):
        errs += validate_policy_rule(d(rule), namespaced, path("rules").index(n))
    return errs


def validate_role(obj: dict) -> list:
    return validate_object_meta(obj, True, names.path_segment_name) + _rules(obj, True)


def validate_cluster_role(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.path_segment_name) + _rules(obj, False)
    agg = obj.get("aggregationRule")
    if isinstance(agg, dict):
        fld = path("aggregationRule", "clusterRoleSelectors")
        selectors = lst(agg.get("clusterRoleSelectors"))
        if not selectors:
            errs.append(required(fld, "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for n, sel in enumerate(selectors):
            errs += validate_label_selector(d(sel), fld.index(n))
            if not selector_is_valid(d(sel)):
                errs.append(invalid(fld.index(n), GoValue("labels.Selector"), "invalid label selector."))
    return errs


def _subject(subject: dict, namespaced: bool, fld: Path) -> list:
    errs = []
    name, kind, group = s(subject.get("name")), s(subject.get("kind")), s(subject.get("apiGroup"))
    if not name:
        errs.append(required(fld.child("name")))
    if kind == "ServiceAccount":
        if name:
            errs += [invalid(fld.child("name"), name, m) for m in names.name_is_dns_subdomain(name, False)]
        if group:
            errs.append(not_supported(fld.child("apiGroup"), group, [""]))
        if not namespaced and not s(subject.get("namespace")):
            errs.append(required(fld.child("namespace")))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(not_supported(fld.child("apiGroup"), group, [GROUP]))
    else:
        errs.append(not_supported(fld.child("kind"), kind, ["ServiceAccount", "User", "Group"]))
    return errs


def _binding(obj: dict, namespaced: bool) -> list:
    errs = validate_object_meta(obj, namespaced, names.path_segment_name)
    ref = d(obj.get("roleRef"))
    if s(ref.get("apiGroup")) != GROUP:
        errs.append(not_supported(path("roleRef", "apiGroup"), s(ref.get("apiGroup")), [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if s(ref.get("kind")) not in kinds:
        errs.append(not_supported(path("roleRef", "kind"), s(ref.get("kind")), kinds))
    name = s(ref.get("name"))
    if not name:
        errs.append(required(path("roleRef", "name")))
    else:
        errs += [invalid(path("roleRef", "name"), name, m) for m in names.path_segment_name(name, False)]
    for n, subject in enumerate(lst(obj.get("subjects"))):
        errs += _subject(d(subject), namespaced, path("subjects").index(n))
    return errs


def _role_ref_changed(new: dict, old: dict) -> list:
    nr, or_ = d(new.get("roleRef")), d(old.get("roleRef"))
    keys = ("apiGroup", "kind", "name")
    if any(s(nr.get(k)) != s(or_.get(k)) for k in keys):
        shown = GoValue("rbac.RoleRef{APIGroup:%s, Kind:%s, Name:%s}" % tuple(go_quote(s(nr.get(k))) for k in keys))
        return [invalid(path("roleRef"), shown, "cannot change roleRef")]
    return []


def validate_role_binding(obj: dict) -> list:
    return _binding(obj, True)


def validate_cluster_role_binding(obj: dict) -> list:
    return _binding(obj, False)


def validate_role_binding_update(new: dict, old: dict) -> list:
    return _binding(new, True) + validate_object_meta_update(new, old) + _role_ref_changed(new, old)


def validate_cluster_role_binding_update(new: dict, old: dict) -> list:
    return _binding(new, False) + validate_object_meta_update(new, old) + _role_ref_changed(new, old)


def validate_role_update(new: dict, old: dict) -> list:
    return validate_role(new) + validate_object_meta_update(new, old)


def validate_cluster_role_update(new: dict, old: dict) -> list:
    return validate_cluster_role(new) + validate_object_meta_update(new, old)


CREATE = {"Role": validate_role, "ClusterRole": validate_cluster_role, "RoleBinding": validate_role_binding,
          "ClusterRoleBinding": validate_cluster_role_binding}
UPDATE = {"Role": validate_role_update, "ClusterRole": validate_cluster_role_update,
          "RoleBinding": validate_role_binding_update, "ClusterRoleBinding": validate_cluster_role_binding_update}
STATUS_UPDATE: dict = {}
