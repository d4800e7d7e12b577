"""A kubectl newer than the server writes protobuf fields v1.32 does not have."""

from __future__ import annotations


def test_kubectl_1_33_debug_copy_to(server, namespace):
    # kubectl 1.33 sends the copied Pod as protobuf with PodStatus field 17
    # (observedGeneration, new in 1.33): it used to be a 400.
    server.kubectl("-n", namespace, "run", "dbg-src", "--image=busybox", "--restart=Never", "--", "sleep", "1000",
                   version="1.33")
    result = server.kubectl("-n", namespace, "debug", "pod/dbg-src", "--copy-to=dbg-copy", "--image=busybox",
                            "--container=debugger", "--", "sleep", "100", version="1.33", check=False)
    assert result.returncode == 0, result.stderr
    pod = server.kubectl_json("-n", namespace, "get", "pod", "dbg-copy")
    assert [c["name"] for c in pod["spec"]["containers"]] == ["dbg-src", "debugger"]
    assert "observedGeneration" not in pod.get("status", {})
