"""Cell formatting shared by many printers: labels, selectors, containers, lists."""

from __future__ import annotations

import re

from k8py.api.printers.values import as_dict, as_list, text

NONE = "<none>"
UNSET = "<unset>"
UNKNOWN = "<unknown>"

# A qualified label key (optional DNS-subdomain prefix) and a label value, as
# upstream validates them before a selector can be printed.
_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_NAME})?$")

_SET_OPERATORS = {"In": "in", "NotIn": "notin"}


def format_labels(labels) -> str:
    """A label map as `a=1,b=2` (sorted by key), or `<none>`."""
    pairs = sorted(as_dict(labels).items())
    return ",".join(f"{key}={text(value)}" for key, value in pairs) or NONE


def selector_string(selector) -> str | None:
    """A metav1.LabelSelector in selector syntax; "" selects all (or, unset, nothing).

    None when the selector is not valid, which upstream cannot print either.
    """
    if selector is None:
        return ""
    if not isinstance(selector, dict):
        return None
    requirements = [(key, f"{key}={text(value)}", _valid(key, [value]))
                    for key, value in as_dict(selector.get("matchLabels")).items()]
    for expression in as_list(selector.get("matchExpressions")):
        requirements.append(_expression(as_dict(expression)))
    if not all(valid for _, _, valid in requirements):
        return None
    # Requirements print sorted by key; a stable sort keeps same-key order.
    requirements.sort(key=lambda requirement: requirement[0])
    return ",".join(rendered for _, rendered, _ in requirements)


def _expression(expression: dict) -> tuple[str, str, bool]:
    key, operator = text(expression.get("key")), expression.get("operator")
    values = [text(v) for v in as_list(expression.get("values"))]
    if operator in _SET_OPERATORS:
        rendered = f"{key} {_SET_OPERATORS[operator]} ({','.join(sorted(values))})"
        return key, rendered, bool(values) and _valid(key, values)
    if operator in ("Exists", "DoesNotExist"):
        rendered = key if operator == "Exists" else f"!{key}"
        return key, rendered, not values and _valid(key, [])
    return key, "", False


def _valid(key: str, values: list) -> bool:
    return bool(_LABEL_KEY.match(key)) and all(
        isinstance(v, str) and _LABEL_VALUE.match(v) for v in values)


def format_label_selector(selector) -> str:
    """A LabelSelector for display: `<none>` when it selects everything or nothing."""
    rendered = selector_string(selector)
    if rendered is None:
        return "<error>"
    return rendered or NONE


def container_cells(containers) -> tuple[str, str]:
    """(names, images) of a container list, each comma-joined."""
    items = [as_dict(c) for c in as_list(containers)]
    return (",".join(text(c.get("name")) for c in items),
            ",".join(text(c.get("image")) for c in items))


def template_containers(obj) -> list:
    """spec.template.spec.containers of a workload object."""
    spec = as_dict(as_dict(as_dict(as_dict(obj).get("spec")).get("template")).get("spec"))
    return as_list(spec.get("containers"))


def bool_word(value) -> str:
    """A *bool as upstream prints it: True, False or <unset>."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return UNSET


def int_or_string(value) -> str:
    """An IntOrString as text (`1`, `50%`)."""
    if isinstance(value, dict):  # the protobuf-shaped {type,intVal,strVal}
        return text(value.get("strVal")) if value.get("type") == 1 else text(value.get("intVal", 0))
    return text(value)


def list_with_more(items: list[str], limit: int = 3, empty: str = UNSET) -> str:
    """The first `limit` items comma-joined, then `+ N more...`; `empty` when there are none."""
    shown = ",".join(items[:limit])
    if len(items) > limit:
        return f"{shown} + {len(items) - limit} more..."
    return shown or empty


def join_host_port(host: str, port) -> str:
    """host:port, bracketing IPv6 literals as net.JoinHostPort does."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def first_non_empty(*values: str) -> str:
    return next((v for v in values if v), "")
