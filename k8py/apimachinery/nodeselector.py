"""NodeSelectorTerms against a node object (the rules of `v1.NodeSelector`): used
wherever a term is checked against a node (DaemonSet placement, PersistentVolume node
affinity, the scheduler's NodeAffinity plugin)."""

from __future__ import annotations


def requirement_matches(req: dict, values: dict) -> bool:
    """One NodeSelectorRequirement against labels (or fields)."""
    key, op, wanted = req.get("key", ""), req.get("operator"), req.get("values") or []
    present = key in values
    have = values.get(key)
    if op == "In":
        return present and have in wanted
    if op == "NotIn":
        return not present or have not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):  # exactly one integer value, as upstream's selector
        if not present or len(wanted) != 1:
            return False
        try:
            number, bound = int(have), int(wanted[0])
        except (TypeError, ValueError):
            return False
        return number > bound if op == "Gt" else number < bound
    return False


def term_matches(term: dict, node: dict) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches nothing
    labels = node["metadata"].get("labels") or {}
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return all(requirement_matches(r, labels) for r in expressions) and \
        all(requirement_matches(r, node_fields) for r in fields)
