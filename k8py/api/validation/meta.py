"""ObjectMeta, labels, annotations and label selectors.

Follows k8s.io/apimachinery/pkg/api/validation/objectmeta.go and
pkg/apis/meta/v1/validation, plus the extra finalizer-name rule that
pkg/apis/core/validation adds for the built-in kinds.
"""

from __future__ import annotations

from typing import Callable

from k8py.api.validation import names
from k8py.api.validation.field import (GoValue, Path, d, forbidden, go_quote, go_strings,
                                       i, invalid, is_int, lst, path, required, s,
                                       strmap, too_long)

NameFunc = Callable[[str, bool], list]

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"
# The apiextensions server validates CRD metadata with apimachinery's rules,
# where the cleanup finalizer it adds itself is a plain qualified name.
STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion", "customresourcecleanup.apiextensions.k8s.io"}
BANNED_OWNERS = {("", "v1", "Event")}


def validate_labels(labels, fld: Path) -> list:
    errs = []
    for k, v in strmap(labels).items():
        errs += validate_label_name(k, fld)
        errs += [invalid(fld, v, m) for m in names.is_valid_label_value(v)]
    return errs


def validate_label_name(name: str, fld: Path) -> list:
    return [invalid(fld, name, m) for m in names.is_qualified_name(name)]


def validate_qualified_name(value: str, fld: Path) -> list:
    return [invalid(fld, value, m) for m in names.is_qualified_name(value)]


def validate_annotations(annotations, fld: Path) -> list:
    ann = strmap(annotations)
    errs = []
    for k in ann:
        errs += [invalid(fld, k, m) for m in names.is_qualified_name(k.lower())]
    if sum(len(k) + len(v) for k, v in ann.items()) > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(too_long(fld, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _split_api_version(api_version: str) -> tuple[str, str]:
    if "/" in api_version:
        group, _, version = api_version.partition("/")
        if "/" in version:
            return "", ""
        return group, version
    return "", api_version


def _go_owner_reference(ref: dict) -> str:
    def opt_bool(v):
        return "(*bool)(nil)" if not isinstance(v, bool) else f"&{str(v).lower()}"
    return ("v1.OwnerReference{APIVersion:%s, Kind:%s, Name:%s, UID:%s, Controller:%s, "
            "BlockOwnerDeletion:%s}" % (go_quote(s(ref.get("apiVersion"))), go_quote(s(ref.get("kind"))),
                                        go_quote(s(ref.get("name"))), go_quote(s(ref.get("uid"))),
                                        opt_bool(ref.get("controller")),
                                        opt_bool(ref.get("blockOwnerDeletion"))))


# Upstream reports every extra controller reference, each showing the whole
# list; past a few, repeating a list of thousands only burns CPU and memory.
MAX_CONTROLLER_CONFLICTS = 5


def validate_owner_references(refs, fld: Path) -> list:
    errs = []
    first_controller = ""
    shown = None
    conflicts = 0
    for ref in lst(refs):
        ref = d(ref)
        group, version = _split_api_version(s(ref.get("apiVersion")))
        kind = s(ref.get("kind"))
        if not version:
            errs.append(invalid(fld.child("apiVersion"), s(ref.get("apiVersion")), "version must not be empty"))
        if not kind:
            errs.append(invalid(fld.child("kind"), kind, "kind must not be empty"))
        if not s(ref.get("name")):
            errs.append(invalid(fld.child("name"), s(ref.get("name")), "name must not be empty"))
        if not s(ref.get("uid")):
            errs.append(invalid(fld.child("uid"), s(ref.get("uid")), "uid must not be empty"))
        if (group, version, kind) in BANNED_OWNERS:
            errs.append(invalid(fld, GoValue(_go_owner_reference(ref)),
                                f"{group}/{version}, Kind={kind} is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{kind}/{s(ref.get('name'))}"
            if first_controller and conflicts < MAX_CONTROLLER_CONFLICTS:
                conflicts += 1
                if shown is None:  # rendered once, not once per conflict
                    shown = GoValue("[]v1.OwnerReference{" + ", ".join(
                        _go_owner_reference(d(r)) for r in lst(refs)) + "}")
                errs.append(invalid(fld, shown, 'Only one reference can have Controller set to true. '
                                                f'Found "true" in references for {first_controller} and {current}'))
            elif not first_controller:
                first_controller = current
    return errs


def validate_finalizers(finalizers, fld: Path) -> list:
    errs = []
    values = [f if isinstance(f, str) else "" for f in lst(finalizers)]
    for f in values:
        errs += [invalid(fld, f, m) for m in names.is_qualified_name(f)]
    if "orphan" in values and "foregroundDeletion" in values:
        errs.append(invalid(fld, values, "finalizer orphan and foregroundDeletion cannot be both set"))
    return errs


def validate_kube_finalizer_name(value: str, fld: Path) -> list:
    if "/" not in value and value not in STANDARD_FINALIZERS:
        return [invalid(fld, value, "name is neither a standard finalizer name nor is it fully qualified")]
    return []


def validate_nonnegative(value, fld: Path) -> list:
    if is_int(value) and value < 0:
        return [invalid(fld, value, IS_NEGATIVE)]
    return []


def validate_object_meta(obj: dict, namespaced: bool, name_fn: NameFunc, fld: Path = path("metadata"),
                         kube_finalizers: bool = True) -> list:
    """ValidateObjectMeta (core flavour unless kube_finalizers is False)."""
    m = d(obj.get("metadata"))
    errs = []
    generate_name = s(m.get("generateName"))
    if generate_name:
        errs += [invalid(fld.child("generateName"), generate_name, msg) for msg in name_fn(generate_name, True)]
    name = s(m.get("name"))
    if not name:
        errs.append(required(fld.child("name"), "name or generateName is required"))
    else:
        errs += [invalid(fld.child("name"), name, msg) for msg in name_fn(name, False)]
    namespace = s(m.get("namespace"))
    if namespaced:
        if not namespace:
            errs.append(required(fld.child("namespace")))
        else:
            errs += [invalid(fld.child("namespace"), namespace, msg)
                     for msg in names.name_is_dns_label(namespace, False)]
    elif namespace:
        errs.append(forbidden(fld.child("namespace"), "not allowed on this type"))
    errs += validate_nonnegative(m.get("generation"), fld.child("generation"))
    errs += validate_labels(m.get("labels"), fld.child("labels"))
    errs += validate_annotations(m.get("annotations"), fld.child("annotations"))
    errs += validate_owner_references(m.get("ownerReferences"), fld.child("ownerReferences"))
    errs += validate_finalizers(m.get("finalizers"), fld.child("finalizers"))
    if kube_finalizers:
        for n, f in enumerate(lst(m.get("finalizers"))):
            errs += validate_kube_finalizer_name(s(f), fld.child("finalizers").index(n))
    return errs


def validate_immutable(new, old, fld: Path, shown=None) -> list:
    if new != old:
        return [invalid(fld, new if shown is None else shown, FIELD_IMMUTABLE)]
    return []


def _time_value(value) -> GoValue:
    """metav1.Time is a Stringer: Go prints its time.Time form."""
    if not value:
        return GoValue("0001-01-01 00:00:00 +0000 UTC")
    text = str(value).replace("T", " ").replace("Z", " +0000 UTC")
    return GoValue(text)


def validate_object_meta_update(new: dict, old: dict, fld: Path = path("metadata"),
                                kube_finalizers: bool = True) -> list:
    nm, om = d(new.get("metadata")), d(old.get("metadata"))
    errs = []
    if om.get("deletionTimestamp"):
        extra = sorted(set(s(f) for f in lst(nm.get("finalizers"))) - set(s(f) for f in lst(om.get("finalizers"))))
        if extra:
            errs.append(forbidden(fld.child("finalizers"),
                                  "no new finalizers can be added if the object is being deleted, "
                                  f"found new finalizers {go_strings(extra)}"))
    if not s(nm.get("resourceVersion")):
        errs.append(invalid(fld.child("resourceVersion"), s(nm.get("resourceVersion")),
                            "must be specified for an update"))
    if i(nm.get("generation")) < i(om.get("generation")):
        errs.append(invalid(fld.child("generation"), i(nm.get("generation")), "must not be decremented"))
    for key in ("name", "namespace", "uid"):
        errs += validate_immutable(s(nm.get(key)), s(om.get(key)), fld.child(key))
    if nm.get("creationTimestamp") != om.get("creationTimestamp"):
        errs.append(invalid(fld.child("creationTimestamp"), _time_value(nm.get("creationTimestamp")),
                            FIELD_IMMUTABLE))
    if nm.get("deletionTimestamp") != om.get("deletionTimestamp"):
        shown = GoValue("null") if not nm.get("deletionTimestamp") else _time_value(nm.get("deletionTimestamp"))
        errs.append(invalid(fld.child("deletionTimestamp"), shown, FIELD_IMMUTABLE))
    if nm.get("deletionGracePeriodSeconds") != om.get("deletionGracePeriodSeconds"):
        errs.append(invalid(fld.child("deletionGracePeriodSeconds"), nm.get("deletionGracePeriodSeconds"),
                            FIELD_IMMUTABLE))
    errs += validate_labels(nm.get("labels"), fld.child("labels"))
    errs += validate_annotations(nm.get("annotations"), fld.child("annotations"))
    errs += validate_owner_references(nm.get("ownerReferences"), fld.child("ownerReferences"))
    if kube_finalizers:
        for n, f in enumerate(lst(nm.get("finalizers"))):
            errs += validate_kube_finalizer_name(s(f), fld.child("finalizers").index(n))
    return errs


def validate_template_object_meta(meta, fld: Path) -> list:
    """Embedded templates (PVC templates): only labels and annotations may be set."""
    m = d(meta)
    errs = validate_annotations(m.get("annotations"), fld.child("annotations"))
    errs += validate_labels(m.get("labels"), fld.child("labels"))
    for key, value in m.items():
        if key in ("labels", "annotations") or value in (None, "", {}, []):
            continue
        errs.append(forbidden(fld.child(key), "cannot be set"))
    return errs


# ---- label selectors ------------------------------------------------------------

def validate_label_selector(sel, fld: Path, allow_invalid_values: bool = False) -> list:
    if not isinstance(sel, dict):
        return []
    errs = validate_labels(sel.get("matchLabels"), fld.child("matchLabels"))
    for n, expr in enumerate(lst(sel.get("matchExpressions"))):
        errs += validate_label_selector_requirement(d(expr), fld.child("matchExpressions").index(n),
                                                    allow_invalid_values)
    return errs


def validate_label_selector_requirement(expr: dict, fld: Path, allow_invalid_values: bool = False) -> list:
    errs = []
    op = s(expr.get("operator"))
    values = lst(expr.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(fld.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(fld.child("values"),
                                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        errs.append(invalid(fld.child("operator"), op, "not a valid selector operator"))
    errs += validate_label_name(s(expr.get("key")), fld.child("key"))
    if not allow_invalid_values:
        for n, v in enumerate(values):
            errs += [invalid(fld.child("values").index(n), s(v), m) for m in names.is_valid_label_value(s(v))]
    return errs


def selector_is_valid(sel) -> bool:
    """Would LabelSelectorAsSelector succeed?"""
    if not isinstance(sel, dict):
        return True
    for k, v in strmap(sel.get("matchLabels")).items():
        if names.is_qualified_name(k) or names.is_valid_label_value(v):
            return False
    for expr in lst(sel.get("matchExpressions")):
        expr = d(expr)
        op = s(expr.get("operator"))
        vals = lst(expr.get("values"))
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
        if op in ("In", "NotIn") and not vals or op in ("Exists", "DoesNotExist") and vals:
            return False
        if names.is_qualified_name(s(expr.get("key"))):
            return False
        if any(names.is_valid_label_value(s(v)) for v in vals):
            return False
    return True


def selector_empty(sel) -> bool:
    sel = d(sel)
    return not d(sel.get("matchLabels")) and not lst(sel.get("matchExpressions"))


def selector_matches(sel, labels) -> bool:
    """A LabelSelector (nil selects nothing, empty selects everything)."""
    if not isinstance(sel, dict):
        return False
    labels = strmap(labels)
    for k, v in strmap(sel.get("matchLabels")).items():
        if labels.get(k) != v:
            return False
    for expr in lst(sel.get("matchExpressions")):
        expr = d(expr)
        key, op = s(expr.get("key")), s(expr.get("operator"))
        vals = [s(v) for v in lst(expr.get("values"))]
        if op == "In" and labels.get(key) not in vals:
            return False
        if op == "NotIn" and key in labels and labels[key] in vals:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def map_selector_matches(selector, labels) -> bool:
    """A plain label map used as a selector (ReplicationController, Service)."""
    labels = strmap(labels)
    return all(labels.get(k) == v for k, v in strmap(selector).items())


def dedupe(causes: list) -> list:
    seen, out = set(), []
    for c in causes:
        key = (c.field, c.message)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


