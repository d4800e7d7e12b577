"""Pod networking: CNI plugins wire each pod's netns; the host side keeps
pod and service ranges on this machine (routes, forwarding, masquerade)."""
