"""/openapi/v2 in protobuf: kubectl validates `kind: List` documents against it."""

from __future__ import annotations

import json


def test_apply_of_a_list_is_validated_with_the_v2_document(server):
    good = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-list"}, "data": {"a": "b"}}]}
    assert "configmap/from-list created" in server.kubectl("apply", "-f", "-", input=json.dumps(good)).stdout
    bad = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad-list"}, "bogus": 1}]}
    result = server.kubectl("apply", "-f", "-", input=json.dumps(bad), check=False)
    assert result.returncode != 0
    assert 'unknown field "bogus" in io.k8s.api.core.v1.ConfigMap' in result.stderr
    # What `kubectl get -o yaml` prints is a List, and applies back unchanged.
    exported = server.kubectl("get", "configmap", "from-list", "-o", "yaml").stdout
    listed = server.kubectl("get", "configmaps", "--field-selector=metadata.name=from-list", "-o", "yaml").stdout
    assert "kind: List" in listed
    assert "configmap/from-list" in server.kubectl("apply", "-f", "-", input=listed).stdout
    assert "from-list" in exported
