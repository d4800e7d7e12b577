"""Printers for admissionregistration.k8s.io and flowcontrol.apiserver.k8s.io."""

from __future__ import annotations

from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.formatting import NONE, UNSET, format_label_selector
from k8py.api.printers.values import as_dict, as_list, dig, integer, name_of, optional_int, text

GROUP = "admissionregistration.k8s.io"

# --- webhooks and admission policies ------------------------------------------------

WEBHOOKS = Column("Webhooks", type="integer",
                  description="Webhooks indicates the number of webhooks registered in this configuration")

WEBHOOK_CONFIGURATION = Printer(
    (NAME, WEBHOOKS, AGE),
    lambda obj, now: [name_of(obj), len(as_list(obj.get("webhooks"))), age(obj, now)],
)

PARAM_KIND = Column("ParamKind", description="ParamKind specifies the kind of resources used to "
                                             "parameterize this policy")


def _param_kind(policy: dict) -> str:
    kind = dig(policy, "spec", "paramKind")
    if not isinstance(kind, dict):
        return UNSET
    return f"{text(kind.get('apiVersion'))}/{text(kind.get('kind'))}"


def _policy_printer(rules_column: Column, rules_field: str) -> Printer:
    return Printer(
        (NAME, rules_column, PARAM_KIND, AGE),
        lambda obj, now: [name_of(obj), len(as_list(dig(obj, "spec", rules_field))), _param_kind(obj),
                          age(obj, now)],
    )


def _param_ref(binding: dict) -> str:
    ref = dig(binding, "spec", "paramRef")
    if not isinstance(ref, dict):
        return UNSET
    if text(ref.get("name")):
        # Without a namespace the param may be cluster-scoped or in any namespace.
        return f"{text(ref.get('namespace')) or '*'}/{text(ref.get('name'))}"
    if isinstance(ref.get("selector"), dict):
        return format_label_selector(ref["selector"])
    return UNSET


BINDING = Printer((
    NAME,
    Column("PolicyName", description="PolicyName indicates the policy definition which the policy "
                                     "binding binded to"),
    Column("ParamRef", description="ParamRef indicates the param resource which sets the "
                                   "configration param"),
    AGE,
), lambda obj, now: [name_of(obj), text(dig(obj, "spec", "policyName")), _param_ref(obj), age(obj, now)])

VALIDATING_POLICY = _policy_printer(
    Column("Validations", type="integer", description="Validations indicates the number of validation "
                                                      "rules defined in this configuration"),
    "validations")
MUTATING_POLICY = _policy_printer(
    Column("Mutations", type="integer", description="Mutation indicates the number of mutations rules "
                                                    "defined in this configuration"),
    "mutations")

# --- API priority and fairness --------------------------------------------------------


def _dangling(schema: dict) -> str:
    """Whether the referenced priority level is missing: True/False, `?` when not yet known."""
    for cond in map(as_dict, as_list(dig(schema, "status", "conditions"))):
        if cond.get("type") == "Dangling":
            return text(cond.get("status"))
    return "?"


def _flow_schema_cells(schema, now):
    spec = as_dict(schema.get("spec"))
    method = spec.get("distinguisherMethod")
    return [
        name_of(schema), text(dig(spec, "priorityLevelConfiguration", "name")),
        integer(spec.get("matchingPrecedence")),
        text(as_dict(method).get("type")) if isinstance(method, dict) else NONE,
        age(schema, now), _dangling(schema),
    ]


FLOW_SCHEMA = Printer((
    NAME,
    Column("PriorityLevel", doc="flowcontrol.v1.PriorityLevelConfigurationReference.name"),
    Column("MatchingPrecedence", doc="flowcontrol.v1.FlowSchemaSpec.matchingPrecedence"),
    Column("DistinguisherMethod", doc="flowcontrol.v1.FlowSchemaSpec.distinguisherMethod"),
    AGE,
    Column("MissingPL", description="references a broken or non-existent PriorityLevelConfiguration"),
), _flow_schema_cells)

# v1 defaults for a limited level and its queues.
DEFAULT_SHARES, DEFAULT_QUEUES, DEFAULT_HAND_SIZE, DEFAULT_QUEUE_LENGTH = 30, 64, 8, 50


def _or(value, default: int) -> int:
    number = optional_int(value)
    return default if number is None else number


def _priority_level_cells(level, now):
    spec = as_dict(level.get("spec"))
    shares = queues = hand = length = NONE
    limited = spec.get("limited")
    if isinstance(limited, dict):
        shares = _or(limited.get("nominalConcurrencyShares"), DEFAULT_SHARES)
        queuing = dig(limited, "limitResponse", "queuing")
        if isinstance(queuing, dict):
            queues = _or(queuing.get("queues"), DEFAULT_QUEUES)
            hand = _or(queuing.get("handSize"), DEFAULT_HAND_SIZE)
            length = _or(queuing.get("queueLengthLimit"), DEFAULT_QUEUE_LENGTH)
    return [name_of(level), text(spec.get("type")), shares, queues, hand, length, age(level, now)]


PRIORITY_LEVEL = Printer((
    NAME,
    Column("Type", doc="flowcontrol.v1.PriorityLevelConfigurationSpec.type"),
    Column("NominalConcurrencyShares", doc="flowcontrol.v1.LimitedPriorityLevelConfiguration."
                                           "nominalConcurrencyShares"),
    Column("Queues", doc="flowcontrol.v1.QueuingConfiguration.queues"),
    Column("HandSize", doc="flowcontrol.v1.QueuingConfiguration.handSize"),
    Column("QueueLengthLimit", doc="flowcontrol.v1.QueuingConfiguration.queueLengthLimit"),
    AGE,
), _priority_level_cells)


PRINTERS = {
    (GROUP, "MutatingWebhookConfiguration"): WEBHOOK_CONFIGURATION,
    (GROUP, "ValidatingWebhookConfiguration"): WEBHOOK_CONFIGURATION,
    (GROUP, "ValidatingAdmissionPolicy"): VALIDATING_POLICY,
    (GROUP, "ValidatingAdmissionPolicyBinding"): BINDING,
    (GROUP, "MutatingAdmissionPolicy"): MUTATING_POLICY,
    (GROUP, "MutatingAdmissionPolicyBinding"): BINDING,
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"): FLOW_SCHEMA,
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"): PRIORITY_LEVEL,
}
