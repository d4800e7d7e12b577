"""Impersonation (`kubectl --as USER --as-group G`): act as another user.

The caller must be allowed the `impersonate` verb on each identity it asks
for (users, groups, serviceaccounts, uids, userextras), as upstream checks.
The impersonated user then goes through authorization like anyone else, which
is what makes `kubectl auth can-i --as jane` answer for jane.
"""

from __future__ import annotations

from k8py.apimachinery import errors
from k8py.apiserver.authn import ALL_AUTHENTICATED, ANONYMOUS, UserInfo
from k8py.apiserver.authz import Attributes

USER, GROUP, UID, EXTRA = "Impersonate-User", "Impersonate-Group", "Impersonate-Uid", "Impersonate-Extra-"
SA_PREFIX = "system:serviceaccount:"


def impersonated(user: UserInfo, headers, authorizer) -> UserInfo:
    """The user to act as: `user` itself when no impersonation headers are present."""
    name = headers.get(USER)
    groups = headers.getall(GROUP, [])
    uid = headers.get(UID, "")
    extra = {}
    for header, value in headers.items():
        if header.lower().startswith(EXTRA.lower()):
            extra.setdefault(header[len(EXTRA):].lower(), []).append(value)
    if name is None:
        if groups or uid or extra:
            raise errors.StatusError(500, "InternalError", "Internal error occurred: requested "
                                     f"{[*groups, uid, *extra]} without impersonating a user")
        return user
    requests = []
    if name.startswith(SA_PREFIX) and name.count(":") == 3:
        _, _, namespace, sa = name.split(":")
        requests.append(Attributes(user=user, verb="impersonate", resource_request=True, namespace=namespace,
                                   resource="serviceaccounts", name=sa))
        groups = [*groups, "system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
    else:
        requests.append(Attributes(user=user, verb="impersonate", resource_request=True, resource="users",
                                   name=name))
    requests += [Attributes(user=user, verb="impersonate", resource_request=True, resource="groups", name=g)
                 for g in headers.getall(GROUP, [])]
    if uid:
        requests.append(Attributes(user=user, verb="impersonate", resource_request=True,
                                   api_group="authentication.k8s.io", resource="uids", name=uid))
    for key, values in extra.items():
        requests += [Attributes(user=user, verb="impersonate", resource_request=True,
                                api_group="authentication.k8s.io", resource="userextras", subresource=key, name=v)
                     for v in values]
    for attrs in requests:
        if not authorizer.authorize(attrs).allowed:
            raise errors.forbidden(user.name, "impersonate", attrs.resource, attrs.api_group, attrs.name,
                                   attrs.namespace, subresource=attrs.subresource)
    if name != ANONYMOUS and ALL_AUTHENTICATED not in groups:
        groups = [*groups, ALL_AUTHENTICATED]
    return UserInfo(name, uid=uid, groups=tuple(groups), extra=extra)
