"""Server-side field management: who owns which fields of an object.

A Python rendering of upstream's sigs.k8s.io/structured-merge-diff (field
sets, FieldsV1, compare/merge/prune) and the managedFields logic of
k8s.io/apimachinery/pkg/util/managedfields, on objects as plain dicts.

    record_update(old, new, manager, "Update", subresource, now, schema)
        on every create / update / non-apply patch
    apply(live, applied, manager, force, now, schema)
        for PATCH application/apply-patch+yaml (instead of record_update)

Upstream records ownership after decoding and defaulting but before
admission and the strategy, so fields the strategy sets or wipes are nobody's;
pass what the strategy resets as `reset_fields` (status on the main resource
of kinds with a status subresource, spec on the status subresource).
"""

from .fieldpath import (FieldSet, FieldsV1Error, decode_fields_v1, encode_fields_v1, make_path,
                        path_string)
from .managers import ManagedFieldsError
from .typeinfo import TypedError
from .updater import (BEFORE_FIRST_APPLY, LAST_APPLIED, STRIPPED, apply, conflict_error, field_set,
                      manager_name, now_rfc3339, record_update, reset_field_set)

__all__ = [
    "FieldSet", "FieldsV1Error", "ManagedFieldsError", "TypedError", "BEFORE_FIRST_APPLY", "LAST_APPLIED",
    "STRIPPED", "apply", "conflict_error", "decode_fields_v1", "encode_fields_v1", "field_set",
    "make_path", "manager_name", "now_rfc3339", "path_string", "record_update", "reset_field_set",
]
