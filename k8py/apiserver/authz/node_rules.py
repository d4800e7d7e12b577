"""The rules of the system:node ClusterRole (upstream's NodeRules); filled in by the Node authorizer's branch."""

NODE_RULES: list[dict] = []
