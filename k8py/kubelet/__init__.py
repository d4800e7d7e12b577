"""The node agent (kubelet): runs the pods bound to one node."""
