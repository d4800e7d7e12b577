"""Decoding `application/vnd.kubernetes.protobuf` request bodies.

kubectl sends some bodies as Kubernetes protobuf with no way to turn it off
(create deployment/configmap/secret/..., autoscale, auth can-i, create token,
drain's eviction and delete).  `decode_protobuf_object` turns such a body into
the JSON object the same client would have sent as JSON, so everything after
the codec sees only the JSON form.
"""

from k8py.apimachinery.protobuf.decoder import MAGIC, decode_protobuf_object, format_go_duration

__all__ = ["MAGIC", "decode_protobuf_object", "format_go_duration"]
