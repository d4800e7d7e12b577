"""Create, read, update and delete the objects of one stored resource.

This is k8py's version of upstream's generic registry Store: it owns the
object lifecycle rules every kind shares (uid, timestamps, generateName,
optimistic concurrency, preconditions, graceful deletion, finalizers) and
calls the kind's `Strategy` for the rest (defaults, validation, admission).
Objects are handled in their storage version; reads come from the watch
cache, writes go to the Store.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
from dataclasses import dataclass
from typing import Awaitable, Callable

import orjson

from k8py.api.fields import check_field_selector, field_values
from k8py.api.registry import Resource
from k8py.apimachinery import errors, meta
from k8py.apimachinery.selectors import FieldSelector, Selector
from k8py.apiserver import managedfields
from k8py.api.schema import schemas
from k8py.storage.interface import CompactedError, KeyExistsError, KeyNotFoundError, RevisionConflictError, Store

# How often an update without a pinned resourceVersion is retried when a
# concurrent writer got there first (a patch, a status update by a controller).
MAX_UPDATE_RETRIES = 8


@dataclass
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None  # Orphan | Background | Foreground
    uid: str | None = None
    resource_version: str | None = None
    dry_run: bool = False

    @classmethod
    def from_body(cls, body: dict | None, query) -> "DeleteOptions":
        body = body or {}
        pre = body.get("preconditions") or {}
        grace = body.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
        dry = body.get("dryRun") or query.getall("dryRun", [])
        propagation = body.get("propagationPolicy") or query.get("propagationPolicy")
        if propagation is None and body.get("orphanDependents") is not None:
            propagation = "Orphan" if body["orphanDependents"] else "Background"
        if propagation is None and query.get("orphanDependents") in ("true", "false"):
            propagation = "Orphan" if query.get("orphanDependents") == "true" else "Background"
        if propagation not in (None, "Orphan", "Background", "Foreground"):
            raise errors.invalid("DeleteOptions", "", [errors.Cause(
                "propagationPolicy",
                f'Unsupported value: "{propagation}": supported values: "Foreground", "Background", "Orphan", "nil"',
                "FieldValueNotSupported")])
        try:
            grace = int(grace) if grace is not None else None
        except (TypeError, ValueError):
            raise errors.bad_request(f"invalid gracePeriodSeconds: {grace!r}")
        return cls(grace_period=grace, propagation=propagation, uid=pre.get("uid"),
                   resource_version=pre.get("resourceVersion"), dry_run=bool(dry))


@dataclass
class ListResult:
    items: list  # CachedObject
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


def encode_continue(revision: int, last_key: str, prefix: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": revision, "start": last_key[len(prefix):] + "\x00"}
    return base64.urlsafe_b64encode(orjson.dumps(token)).decode().rstrip("=")


def decode_continue(token: str, prefix: str) -> tuple[str, int]:
    """The key to continue after and the revision of the list's snapshot
    (-1: the latest, for a continuation past an expired one); 400 BadRequest
    for a token we did not make."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded))
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(data.get("start"), str):
            raise ValueError
        start = data["start"]
        if start.startswith("/") or ".." in start.split("/"):
            raise ValueError
        revision = data.get("rv", -1)
        if not isinstance(revision, int) or revision == 0 or revision < -1:
            raise ValueError
    except Exception:
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                 "(version meta.k8s.io/v1)") from None
    return prefix + start.rstrip("\x00"), revision


EXPIRED_CONTINUE = ("The provided continue parameter is too old to display a consistent list result. You can "
                    "start a new list without the continue parameter, or use the continue token in this response "
                    "to retrieve the remainder of the results. Continuing with the provided token results in an "
                    "inconsistent list - objects that were created, modified, or deleted between the time the "
                    "first chunk was returned and now may show up in the list.")


def encode_object(obj: dict) -> bytes:
    """Stored bytes carry no resourceVersion: the store's revision is it."""
    m = obj.get("metadata") or {}
    rv = m.pop("resourceVersion", None)
    try:
        return orjson.dumps(obj)
    finally:
        if rv is not None:
            m["resourceVersion"] = rv


def decode_object(raw: bytes, revision: int) -> dict:
    obj = orjson.loads(raw)
    meta.meta(obj)["resourceVersion"] = str(revision)
    return obj


class ObjectStore:
    def __init__(self, resource: Resource, store: Store, cache, strategy):
        self.resource = resource
        self.store = store
        self.cache = cache
        self.strategy = strategy
        # Set when values are encrypted at rest (a TransformingStore): keys no
        # provider could read (answered 500), keys read with an older key.
        self._unreadable: dict[str, str] | None = getattr(store, "unreadable", None)
        self._stale: set[str] | None = getattr(store, "stale", None)

    # ---- reads ------------------------------------------------------------

    def key(self, namespace: str, name: str) -> str:
        return self.resource.key(namespace, name)

    def get_cached(self, namespace: str, name: str):
        key = self.key(namespace, name)
        cached = self.cache.get(key)
        if cached is None and self._unreadable and key in self._unreadable:
            raise errors.internal_error(self._unreadable[key])
        return cached

    def get(self, namespace: str, name: str) -> dict:
        cached = self.get_cached(namespace, name)
        if cached is None:
            raise errors.not_found(self.resource.plural, name, self.resource.group)
        return decode_object(cached.raw, cached.revision)

    def matcher(self, labels: Selector, fields: FieldSelector) -> Callable[[dict], bool] | None:
        if labels.empty() and fields.empty():
            return None
        check_field_selector(self.resource.group, self.resource.kind, fields)
        group, kind = self.resource.group, self.resource.kind

        def matches(obj: dict) -> bool:
            if not labels.matches((obj.get("metadata") or {}).get("labels")):
                return False
            return fields.empty() or fields.matches(field_values(group, kind, obj))
        return matches

    def list(self, namespace: str, labels: Selector, fields: FieldSelector, limit: int = 0,
             continue_token: str = "") -> ListResult:
        prefix = self.resource.key_prefix(namespace or None)
        matches = self.matcher(labels, fields)
        if self._unreadable:
            unreadable = self.store.unreadable_under(prefix)
            if unreadable:
                raise errors.internal_error(unreadable)
        if continue_token:
            start_after, snapshot = decode_continue(continue_token, prefix)
            try:
                items, revision = (self.cache.list(prefix) if snapshot == -1
                                   else self.cache.list_at(prefix, snapshot))
            except CompactedError:
                raise errors.expired(EXPIRED_CONTINUE, list_continue=encode_continue(-1, start_after, prefix)) \
                    from None
            items = [c for c in items if c.key > start_after]
        else:
            items, revision = self.cache.list(prefix)
        # A name selector picks one key: no need to test every object.
        name = fields.exact_name() if not fields.empty() else None
        if name is not None:
            items = [c for c in items if c.key.rsplit("/", 1)[-1] == name]
        if matches is not None:
            items = [c for c in items if matches(c.obj)]
        if limit and len(items) > limit:
            page = items[:limit]
            remaining = len(items) - limit if matches is None else None
            token_revision = -1 if continue_token and snapshot == -1 else revision
            return ListResult(page, revision, encode_continue(token_revision, page[-1].key, prefix), remaining)
        return ListResult(items, revision)

    # ---- writes -----------------------------------------------------------

    def record_ownership(self, old: dict | None, new: dict, manager: str | None, subresource: str = "") -> None:
        """Track which manager set which fields (metadata.managedFields)."""
        if manager is None:
            return
        r = self.resource
        if subresource == "status":
            reset = managedfields.reset_field_set("spec")
        elif not subresource and r.has_subresource("status"):
            reset = managedfields.reset_field_set("status")
        else:
            reset = None
        managedfields.record_update(old, new, manager, "Update", subresource, meta.rfc3339(),
                                    schemas().for_kind(r.group, r.version, r.kind), reset_fields=reset)

    async def create(self, obj: dict, namespace: str, *, dry_run: bool = False, user=None,
                     trusted: bool = False, field_manager: str | None = None) -> dict:
        """Store a new object. `trusted` skips validation, for the few objects
        the server itself writes that users may not (the kubernetes Endpoints
        on a loopback address, as upstream's endpoint reconciler does)."""
        m = meta.meta(obj)
        self._check_namespace(m, namespace)
        if self.resource.namespaced:
            m["namespace"] = namespace
        else:
            m.pop("namespace", None)
        if not m.get("name") and m.get("generateName"):
            m["name"] = meta.generate_name(m["generateName"])
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            m.pop(field, None)
        m["uid"] = meta.new_uid()
        m["creationTimestamp"] = meta.rfc3339()
        self.strategy.check_escalation(self.resource, obj, None, user)
        self.strategy.before_create(self.resource, obj)
        self.record_ownership(None, obj, field_manager)
        if not trusted:
            self.strategy.validate_create(self.resource, obj)
        # Where quotas apply, admission and the write happen one create at a time.
        async with self.strategy.quota_lock(self.resource, namespace) or contextlib.nullcontext():
            await self.strategy.admit_create(self.resource, obj, user=user, dry_run=dry_run)
            if dry_run:
                return obj
            key = self.key(namespace, m["name"])
            try:
                kv = await self.store.create(key, encode_object(obj))
            except KeyExistsError:
                await self.strategy.abort_create(self.resource, obj)
                raise errors.already_exists(self.resource.plural, m["name"], self.resource.group) from None
        m["resourceVersion"] = str(kv.mod_revision)
        self.strategy.after_write(self.resource, obj)
        await self.strategy.after_create(self.resource, obj)
        return obj

    def _check_namespace(self, m: dict, namespace: str) -> None:
        given = m.get("namespace")
        if self.resource.namespaced and given and given != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")

    async def update(self, namespace: str, name: str, obj: dict, *, subresource: str = "",
                     dry_run: bool = False, user=None, field_manager: str | None = None) -> tuple[dict, bool]:
        """PUT: replace the object (or one subresource). Returns (object, created)."""
        m = meta.meta(obj)
        if m.get("name") and m["name"] != name:
            raise errors.bad_request("the name of the object (%s) does not match the name on the URL (%s)"
                                     % (m["name"], name))
        self._check_namespace(m, namespace)
        m["name"] = name
        if self.resource.namespaced:
            m["namespace"] = namespace
        wanted_rv = m.get("resourceVersion") or ""
        if wanted_rv and not wanted_rv.isdigit():
            raise errors.bad_request(f'invalid resource version "{wanted_rv}"')
        current = self.get_cached(namespace, name)
        if current is None:
            if subresource or not self.strategy.allow_create_on_update(self.resource):
                raise errors.not_found(self.resource.plural, name, self.resource.group)
            if wanted_rv:
                # A create can't be conditional on a version of a missing object.
                raise errors.not_found(self.resource.plural, name, self.resource.group)
            return await self.create(obj, namespace, dry_run=dry_run, user=user,
                                     field_manager=field_manager), True
        if not wanted_rv and not self.strategy.allow_unconditional_update(self.resource):
            raise errors.invalid(self.resource.kind, name, [errors.Cause(
                "metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")],
                self.resource.group)

        def mutate(old: dict) -> dict:
            if wanted_rv and old["metadata"]["resourceVersion"] != wanted_rv:
                raise errors.conflict(self.resource.plural, name, errors.STALE_OBJECT, self.resource.group)
            return obj
        return await self.guaranteed_update(namespace, name, mutate, subresource=subresource,
                                            dry_run=dry_run, user=user, field_manager=field_manager), False

    async def guaranteed_update(self, namespace: str, name: str,
                                mutate: Callable[[dict], dict | Awaitable[dict]], *,
                                subresource: str = "", dry_run: bool = False, user=None,
                                field_manager: str | None = None) -> dict:
        """Read-modify-write, retried when someone else wrote in between.

        `mutate(current)` gets a private copy of the stored object and returns
        the desired object; it raises to abort (e.g. a pinned resourceVersion
        that no longer matches).
        """
        for _ in range(MAX_UPDATE_RETRIES):
            cached = self.get_cached(namespace, name)
            if cached is None:
                raise errors.not_found(self.resource.plural, name, self.resource.group)
            old = decode_object(cached.raw, cached.revision)
            new = mutate(decode_object(cached.raw, cached.revision))
            if hasattr(new, "__await__"):
                new = await new
            self._keep_system_metadata(new, old)
            if not subresource:
                self.strategy.check_escalation(self.resource, new, old, user)
            self.strategy.before_update(self.resource, new, old, subresource)
            self.record_ownership(old, new, field_manager, subresource)
            self.strategy.validate_update(self.resource, new, old, subresource)
            await self.strategy.admit_update(self.resource, new, old, user=user, dry_run=dry_run,
                                              subresource=subresource)
            if self._finalized(new):
                # The last finalizer went away on an object being deleted.
                if dry_run:
                    return new
                try:
                    return await self._delete_now(namespace, name, cached.revision, new) or new
                except RevisionConflictError:
                    continue
            if encode_object(new) == encode_object(old) and not (self._stale and cached.key in self._stale):
                # Nothing changed: no write, no new resourceVersion. A value
                # stored with an older key is written anyway (key rotation).
                return old
            if dry_run:
                return new
            try:
                kv = await self.store.update(cached.key, encode_object(new), cached.revision)
            except RevisionConflictError:
                continue
            except KeyNotFoundError:
                raise errors.not_found(self.resource.plural, name, self.resource.group) from None
            new["metadata"]["resourceVersion"] = str(kv.mod_revision)
            self.strategy.after_write(self.resource, new)
            return new
        raise errors.conflict(self.resource.plural, name, errors.STALE_OBJECT, self.resource.group)

    @staticmethod
    def _keep_system_metadata(new: dict, old: dict) -> None:
        """Fields only the server sets survive any update unchanged."""
        nm, om = meta.meta(new), old["metadata"]
        for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                      "generation", "selfLink"):
            if field in om:
                nm[field] = om[field]
            else:
                nm.pop(field, None)
        nm["name"], nm["resourceVersion"] = om["name"], om["resourceVersion"]
        if "namespace" in om:
            nm["namespace"] = om["namespace"]

    def _finalized(self, obj: dict) -> bool:
        m = obj["metadata"]
        return bool(m.get("deletionTimestamp")) and not m.get("finalizers") \
            and not m.get("deletionGracePeriodSeconds") \
            and not self.strategy.waits_for_finalize(self.resource, obj)

    # ---- deletes ----------------------------------------------------------

    async def delete(self, namespace: str, name: str, options: DeleteOptions, user=None) -> tuple[dict, bool]:
        """Returns (object, deleted_now). Not deleted now means marked for deletion.

        An object written by someone else between our read and our delete (a
        controller updating status) is read again and the decision retaken, as
        upstream's guaranteed delete does: only preconditions yield a 409."""
        for _ in range(MAX_UPDATE_RETRIES):
            cached = self.get_cached(namespace, name)
            if cached is None:
                raise errors.not_found(self.resource.plural, name, self.resource.group)
            obj = decode_object(cached.raw, cached.revision)
            self._check_preconditions(obj, options)
            await self.strategy.admit_delete(self.resource, obj, options, user=user)
            grace = self.strategy.grace_period(self.resource, obj, options)
            finalizers = list(obj["metadata"].get("finalizers") or [])
            finalizers = self._propagation_finalizers(finalizers, options)
            if not grace and not finalizers and not self.strategy.waits_for_finalize(self.resource, obj):
                if options.dry_run:
                    return obj, True
                try:
                    return await self._delete_now(namespace, name, cached.revision, obj) or obj, True
                except RevisionConflictError:
                    continue
            marked = await self._mark_deleting(namespace, name, grace, finalizers, options)
            if not options.dry_run:
                self.strategy.after_mark_deleting(self.resource, marked)
            return marked, False
        raise errors.conflict(self.resource.plural, name, errors.STALE_OBJECT, self.resource.group)

    def _check_preconditions(self, obj: dict, options: DeleteOptions) -> None:
        m = obj["metadata"]
        if options.uid and options.uid != m.get("uid"):
            raise errors.conflict(self.resource.plural, m["name"],
                                  f"Precondition failed: UID in precondition: {options.uid}, "
                                  f"UID in object meta: {m.get('uid')}", self.resource.group)
        if options.resource_version and options.resource_version != m.get("resourceVersion"):
            raise errors.conflict(self.resource.plural, m["name"],
                                  f"Precondition failed: ResourceVersion in precondition: "
                                  f"{options.resource_version}, ResourceVersion in object meta: "
                                  f"{m.get('resourceVersion')}", self.resource.group)

    def _propagation_finalizers(self, finalizers: list[str], options: DeleteOptions) -> list[str]:
        policy = options.propagation or self.strategy.default_propagation(self.resource)
        finalizers = [f for f in finalizers if f not in ("orphan", "foregroundDeletion")] \
            if options.propagation else finalizers
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        return finalizers

    async def _mark_deleting(self, namespace: str, name: str, grace: int, finalizers: list[str],
                             options: DeleteOptions) -> dict:
        def mark(obj: dict) -> dict:
            m = obj["metadata"]
            self._check_preconditions(obj, options)
            now = meta.now()
            deadline = now + datetime.timedelta(seconds=grace)
            existing = m.get("deletionTimestamp")
            # A second delete may only shorten a grace period, never extend it.
            if not existing or (meta.parse_time(existing) or deadline) > deadline:
                m["deletionTimestamp"] = meta.rfc3339(deadline)
                m["deletionGracePeriodSeconds"] = grace
            m["finalizers"] = finalizers
            if not finalizers:
                m.pop("finalizers")
            self.strategy.before_delete_mark(self.resource, obj)
            return obj
        return await self._write_marked(namespace, name, mark, options.dry_run)

    async def _write_marked(self, namespace, name, mark, dry_run):
        """Write deletion markers, bypassing the user-update rules that keep
        deletionTimestamp immutable."""
        for _ in range(MAX_UPDATE_RETRIES):
            cached = self.get_cached(namespace, name)
            if cached is None:
                raise errors.not_found(self.resource.plural, name, self.resource.group)
            new = mark(decode_object(cached.raw, cached.revision))
            if dry_run:
                return new
            try:
                kv = await self.store.update(cached.key, encode_object(new), cached.revision)
            except RevisionConflictError:
                continue
            new["metadata"]["resourceVersion"] = str(kv.mod_revision)
            return new
        raise errors.conflict(self.resource.plural, name, errors.STALE_OBJECT, self.resource.group)

    async def _delete_now(self, namespace: str, name: str, revision: int, obj: dict) -> dict | None:
        """Delete at `revision`; RevisionConflictError when someone wrote the object since."""
        try:
            kv = await self.store.delete(self.key(namespace, name), revision)
        except KeyNotFoundError:
            raise errors.not_found(self.resource.plural, name, self.resource.group) from None
        obj["metadata"]["resourceVersion"] = str(kv.mod_revision)
        await self.strategy.after_delete(self.resource, obj)
        return obj

    async def delete_collection(self, namespace: str, labels: Selector, fields: FieldSelector,
                                options: DeleteOptions, user=None) -> ListResult:
        listed = self.list(namespace, labels, fields)
        deleted = []
        for cached in listed.items:
            m = cached.obj["metadata"]
            try:
                obj, _ = await self.delete(m.get("namespace", ""), m["name"], options, user=user)
            except errors.StatusError as err:
                if err.code == 404:
                    continue
                raise
            deleted.append(obj)
        return ListResult(deleted, listed.resource_version)
