"""Field ownership (metadata.managedFields) and server-side apply.

The implementation lives in the `k8py.apiserver.fieldmanager` package; this
module is the entry point handlers import.
"""

from k8py.apiserver.fieldmanager import (BEFORE_FIRST_APPLY, LAST_APPLIED, STRIPPED, FieldSet, FieldsV1Error,
                                         ManagedFieldsError, TypedError, apply, conflict_error, decode_fields_v1,
                                         encode_fields_v1, field_set, make_path, manager_name, now_rfc3339,
                                         path_string, record_update, reset_field_set)

__all__ = [
    "FieldSet", "FieldsV1Error", "ManagedFieldsError", "TypedError", "BEFORE_FIRST_APPLY", "LAST_APPLIED",
    "STRIPPED", "apply", "conflict_error", "decode_fields_v1", "encode_fields_v1", "field_set",
    "make_path", "manager_name", "now_rfc3339", "path_string", "record_update", "reset_field_set",
]
