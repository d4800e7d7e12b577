"""The upstream type definitions now load in k8py.apimachinery.schema (the patch
code there needs them); this name stays for the api modules that read them."""

from k8py.apimachinery.schema import (INT_OR_STRING, MICRO_TIME, OBJECT_META, QUANTITY, REF_PREFIX, SCHEMA_VERSION,
                                      TIME, Schemas, schemas)

__all__ = ["INT_OR_STRING", "MICRO_TIME", "OBJECT_META", "QUANTITY", "REF_PREFIX", "SCHEMA_VERSION", "TIME",
           "Schemas", "schemas"]
