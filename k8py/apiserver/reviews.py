"""Computed, create-only resources about identity and access.

authentication.k8s.io: TokenReview (is this token good, and whose is it?),
SelfSubjectReview (`kubectl auth whoami`); authorization.k8s.io:
SelfSubjectAccessReview (`kubectl auth can-i`), SubjectAccessReview,
LocalSubjectAccessReview, SelfSubjectRulesReview; and the TokenRequest
subresource of ServiceAccounts (`kubectl create token`). Nothing is stored:
the request body comes back with its status filled in.
"""

from __future__ import annotations

import copy
import datetime

from k8py.apimachinery import errors
from k8py.apiserver import node_restriction, virtual
from k8py.apiserver.authn import UserInfo
from k8py.apiserver.authz import Attributes
from k8py.apiserver.decoding import check_type_meta, decode_as
from k8py.apiserver.responses import json_response
from k8py.apiserver.tokens import DEFAULT_EXPIRATION, MAX_EXPIRATION, MIN_EXPIRATION

AUTHN = "authentication.k8s.io"
AUTHZ = "authorization.k8s.io"


def _echo(body: dict) -> dict:
    """The request as the response starts from: metadata reduced to what upstream returns."""
    out = copy.deepcopy(body)
    metadata = out.get("metadata") or {}
    out["metadata"] = {**{k: v for k, v in metadata.items() if k in ("name", "namespace")},
                       "creationTimestamp": None}
    return out


def user_info_json(user: UserInfo) -> dict:
    info = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info


# ---- authentication.k8s.io --------------------------------------------------

async def token_review(req, body: dict) -> dict:
    spec = body.get("spec") or {}
    token = spec.get("token") or ""
    if not token:
        raise errors.invalid("TokenReview", "", [errors.Cause("spec.token", "Required value",
                                                              "FieldValueRequired")], AUTHN)
    wanted = spec.get("audiences") or []
    tokens = req.api.tokens
    user, audiences, error = tokens.review(token, wanted)
    if user is None and not error and tokens.claims(token) is None:
        static = req.api.authenticator.authenticate_token(token) if req.api.authenticator else None
        if static is not None and (not wanted or set(wanted) & set(tokens.api_audiences)):
            user, audiences = static, [a for a in (wanted or tokens.api_audiences) if a in tokens.api_audiences]
    out = _echo(body)
    status = {"authenticated": user is not None}
    if user is not None:
        from k8py.apiserver.authn import with_authenticated_group
        status["user"] = user_info_json(with_authenticated_group(user))
        status["audiences"] = audiences
    else:
        status["user"] = {}
        if error:
            status["error"] = f"[invalid bearer token, {error}]"
    out["status"] = status
    return out


async def self_subject_review(req, body: dict) -> dict:
    out = _echo(body)
    out["status"] = {"userInfo": user_info_json(req.user)}
    return out


# ---- authorization.k8s.io ---------------------------------------------------

def _attributes(user: UserInfo, spec: dict, kind: str) -> Attributes:
    resource = spec.get("resourceAttributes")
    non_resource = spec.get("nonResourceAttributes")
    if bool(resource) == bool(non_resource):
        cause = "exactly one of nonResourceAttributes or resourceAttributes must be specified"
        raise errors.invalid(kind, "", [errors.Cause("spec.resourceAttributes", f"Invalid value: \"null\": {cause}"
                                                     if not resource else f"Invalid value: \"{{...}}\": {cause}",
                                                     "FieldValueInvalid")], AUTHZ)
    if resource:
        return Attributes(user=user, verb=resource.get("verb", ""), resource_request=True,
                          namespace=resource.get("namespace", ""), api_group=resource.get("group", ""),
                          api_version=resource.get("version", ""), resource=resource.get("resource", ""),
                          subresource=resource.get("subresource", ""), name=resource.get("name", ""))
    return Attributes(user=user, verb=non_resource.get("verb", ""), resource_request=False,
                      path=non_resource.get("path", ""))


def _access_status(req, attrs: Attributes) -> dict:
    decision = req.api.authorizer.authorize(attrs)
    status = {"allowed": decision.allowed}
    if decision.verdict == "deny":
        status["denied"] = True
    if decision.reason:
        status["reason"] = decision.reason
    return status


async def self_subject_access_review(req, body: dict) -> dict:
    out = _echo(body)
    out["status"] = _access_status(req, _attributes(req.user, body.get("spec") or {}, "SelfSubjectAccessReview"))
    return out


def _subject(spec: dict, kind: str) -> UserInfo:
    if not spec.get("user") and not spec.get("groups"):
        raise errors.invalid(kind, "", [errors.Cause("spec.user", 'Invalid value: "": at least one of user or '
                                                                  'group must be specified', "FieldValueInvalid")],
                             AUTHZ)
    return UserInfo(spec.get("user", ""), uid=spec.get("uid", ""), groups=tuple(spec.get("groups") or ()),
                    extra=spec.get("extra") or {})


async def subject_access_review(req, body: dict) -> dict:
    spec = body.get("spec") or {}
    out = _echo(body)
    out["status"] = _access_status(req, _attributes(_subject(spec, "SubjectAccessReview"), spec,
                                                    "SubjectAccessReview"))
    return out


async def local_subject_access_review(req, body: dict) -> dict:
    spec = body.get("spec") or {}
    kind = "LocalSubjectAccessReview"
    resource = spec.get("resourceAttributes")
    if spec.get("nonResourceAttributes"):
        raise errors.invalid(kind, "", [errors.Cause("spec.nonResourceAttributes", 'Invalid value: "{...}": '
                                                     'disallowed on this kind of request', "FieldValueInvalid")],
                             AUTHZ)
    if resource is not None and resource.get("namespace", req.namespace) != req.namespace:
        raise errors.invalid(kind, "", [errors.Cause(
            "spec.resourceAttributes.namespace",
            f'Invalid value: "{resource.get("namespace")}": must match metadata.namespace', "FieldValueInvalid")],
            AUTHZ)
    if resource is not None:
        resource["namespace"] = req.namespace
    out = _echo(body)
    out["metadata"]["namespace"] = req.namespace
    out["status"] = _access_status(req, _attributes(_subject(spec, kind), spec, kind))
    return out


async def self_subject_rules_review(req, body: dict) -> dict:
    namespace = (body.get("spec") or {}).get("namespace", "")
    rules = req.api.authorizer.rules_for(req.user, namespace)
    out = _echo(body)
    out["status"] = {"resourceRules": rules.resource_rules, "nonResourceRules": rules.non_resource_rules,
                     "incomplete": rules.incomplete}
    if rules.evaluation_error:
        out["status"]["evaluationError"] = rules.evaluation_error
    return out


virtual.CREATE.update({
    (AUTHN, "TokenReview"): token_review,
    (AUTHN, "SelfSubjectReview"): self_subject_review,
    (AUTHZ, "SelfSubjectAccessReview"): self_subject_access_review,
    (AUTHZ, "SubjectAccessReview"): subject_access_review,
    (AUTHZ, "LocalSubjectAccessReview"): local_subject_access_review,
    (AUTHZ, "SelfSubjectRulesReview"): self_subject_rules_review,
})


# ---- serviceaccounts/<name>/token ------------------------------------------

BOUND_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


async def request_token(req):
    body = decode_as(req, await req.body(), AUTHN, "v1", "TokenRequest")
    check_type_meta(req.resource, body, expected_kind="TokenRequest", expected_api_version=f"{AUTHN}/v1")
    name, namespace = req.info.name, req.namespace
    service_account = req.objects.get(namespace, name)
    spec = body.get("spec") or {}
    node_restriction.admit_token_request(req.api, namespace, name, body, req.user)
    expiration = spec.get("expirationSeconds", DEFAULT_EXPIRATION)
    if not isinstance(expiration, int) or isinstance(expiration, bool) or expiration < MIN_EXPIRATION:
        raise errors.invalid("TokenRequest", name, [errors.Cause(
            "spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration less than 10 minutes",
            "FieldValueInvalid")], AUTHN)
    if expiration > MAX_EXPIRATION:
        raise errors.invalid("TokenRequest", name, [errors.Cause(
            "spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration larger than "
                                      "2^32 seconds", "FieldValueInvalid")], AUTHN)
    bound, node = _bound_objects(req, spec.get("boundObjectRef"), namespace)
    audiences = spec.get("audiences") or req.api.tokens.api_audiences
    token, expires = req.api.tokens.issue(service_account, audiences, expiration, bound, node)
    out = _echo(body)
    out["apiVersion"], out["kind"] = f"{AUTHN}/v1", "TokenRequest"
    out["metadata"].update(name=name, namespace=namespace,
                           creationTimestamp=_rfc3339(datetime.datetime.now(datetime.timezone.utc)))
    out["spec"] = {**spec, "audiences": audiences, "expirationSeconds": expiration}
    if "boundObjectRef" not in spec:
        out["spec"]["boundObjectRef"] = None
    out["status"] = {"token": token, "expirationTimestamp":
                     _rfc3339(datetime.datetime.fromtimestamp(expires, datetime.timezone.utc))}
    return json_response(out, 201)


def _bound_objects(req, ref: dict | None, namespace: str) -> tuple[dict | None, dict | None]:
    """The object a token is bound to, and (for a pod) its node; errors as upstream words them."""
    if not ref:
        return None, None
    kind = ref.get("kind", "")
    if kind not in BOUND_KINDS:
        raise errors.bad_request(f'cannot bind token for object of kind "{kind}"')
    if ref.get("apiVersion", "v1") != "v1":
        raise errors.bad_request(f'cannot bind token for object of kind "{kind}" with apiVersion '
                                 f'"{ref.get("apiVersion")}"')
    plural = BOUND_KINDS[kind]
    bound = req.api.lookup_object(plural, "" if kind == "Node" else namespace, ref.get("name", ""))
    if bound is None:
        raise errors.not_found(plural, ref.get("name", ""))
    if ref.get("uid") and ref["uid"] != bound["metadata"]["uid"]:
        raise errors.conflict(plural, ref.get("name", ""),
                              f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
                              f"record. The object might have been deleted and then recreated")
    node = None
    if kind == "Pod" and (bound.get("spec") or {}).get("nodeName"):
        node = req.api.lookup_object("nodes", "", bound["spec"]["nodeName"])
    bound = {**bound, "kind": kind}
    return bound, node


def _rfc3339(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
