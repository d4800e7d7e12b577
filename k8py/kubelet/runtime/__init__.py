"""Container runtimes the kubelet drives: runc (real containers) and simulated."""
