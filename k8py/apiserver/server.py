"""The API server: storage, caches and HTTP routing put together.

`APIServer` owns one Store, one watch cache and one ObjectStore per stored
resource, and an aiohttp application that routes every request through
authentication, then to discovery, OpenAPI, health or a resource handler.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import socket
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web

from k8py.api import fieldcheck
from k8py.api.builtin import builtin_registry
from k8py.api.openapi import OpenAPI
from k8py.api.registry import Resource
from k8py.api.schema import schemas
from k8py.apimachinery import errors
from k8py.apiserver import eviction
from k8py.apiserver import componentstatus, discovery, handlers, pki as pki_mod, reviews
from k8py.apiserver import audit, oidc_discovery, request_context, streams
from k8py.apiserver.aggregator import Aggregator
from k8py.apiserver.autoregister import AutoRegister
from k8py.apiserver.authn import ALL_UNAUTHENTICATED, ANONYMOUS, Authenticator, UserInfo, bearer_token
from k8py.apiserver.authz import Attributes, AuthorizerChain, BootstrapPolicy
from k8py.apiserver.authz.node_graph import NodeGraph, feed_from_caches
from k8py.apiserver.authz.modes import build_chain
from k8py.apiserver.authz.reconcile import reconcile_bootstrap_policy
from k8py.apiserver.bootstrap import bootstrap
from k8py.apiserver.bootstrap_tokens import BootstrapTokenAuthenticator, ensure_join_token
from k8py.apiserver.crds import CustomResources
from k8py.apiserver.encryptionconfig import EncryptionProviders
from k8py.apiserver.impersonation import impersonated
from k8py.apiserver.objects import ObjectStore
from k8py.apiserver import podsecurity
from k8py.apiserver.requestinfo import parse
from k8py.apiserver.responses import json_response, status_response
from k8py.apiserver.services import ServiceAllocations
from k8py.apiserver.strategy import Strategy
from k8py.apiserver.tokens import ServiceAccountTokens, load_or_create_key
from k8py.storage.cache import WatchCache
from k8py.storage.sqlite import datastore_path, open_sqlite_store

log = logging.getLogger("k8py.apiserver")

# Imported for what they register at import time (virtual.CREATE and virtual.READ entries).
VIRTUAL_RESOURCE_MODULES = (componentstatus, reviews)

GIT_VERSION = "v1.32.0+k8py"


@dataclass
class ServerConfig:
    data_dir: Path
    bind_address: str = "127.0.0.1"
    port: int = 6443
    token: str | None = None
    token_file: Path | None = None
    service_cidr: str = "10.43.0.0/16"
    cluster_cidr: str = "10.42.0.0/16"
    cluster_dns: str = "10.43.0.10"
    cluster_domain: str = "cluster.local"
    tls_sans: list[str] = field(default_factory=list)
    authorization_modes: list[str] = field(default_factory=lambda: ["Node", "RBAC"])
    anonymous_auth: bool = False
    admission_control_config_file: Path | None = None
    encryption_provider_config: Path | None = None
    encryption_provider_config_automatic_reload: bool = False
    audit_policy_file: Path | None = None
    audit_log_path: str = ""
    audit_log_maxage: int = 0
    audit_log_maxbackup: int = 0
    audit_log_maxsize: int = 0
    datastore: object | None = None  # an EtcdConfig (k8py.storage.etcd), or None for the embedded SQLite
    default_not_ready_toleration_seconds: int = 300     # DefaultTolerationSeconds admission
    default_unreachable_toleration_seconds: int = 300


def version_info() -> dict:
    return {"major": "1", "minor": "32", "gitVersion": GIT_VERSION, "gitCommit": "k8py",
            "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "python" +
            platform.python_version(), "compiler": "cpython", "platform": f"linux/{_arch()}"}


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


class APIServer:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.registry = builtin_registry()
        self.openapi = OpenAPI(self.registry, schemas())
        self.strategy = Strategy(self)
        self.pod_security = podsecurity.PodSecurity(podsecurity.load_config(config.admission_control_config_file))
        self.service_allocations = ServiceAllocations(config.service_cidr)
        self.store = None
        self.caches: dict[str, WatchCache] = {}
        self.object_stores: dict[tuple[str, str, str], ObjectStore] = {}
        self.authenticator: Authenticator | None = None
        self.node_graph = NodeGraph()
        self.authorizer = AuthorizerChain(BootstrapPolicy())  # until start() builds the configured chain
        self.rbac = None  # the RBAC authorizer, when RBAC is a mode: escalation checks resolve rules with it
        self.tokens: ServiceAccountTokens | None = None
        self.aggregator: Aggregator | None = None
        self.ready = False
        self.background: list[asyncio.Task] = []
        self.crds = CustomResources(self)
        self.kubelets = streams.KubeletConnector(config.data_dir / "server" / "tls")
        self.audit = audit.Auditor.from_config(config)
        self.encryption = EncryptionProviders(config.encryption_provider_config,
                                              config.encryption_provider_config_automatic_reload)

    # ---- start-up ---------------------------------------------------------

    async def start(self) -> None:
        if self.config.datastore is not None:
            from k8py.storage.etcd import open_etcd_store
            self.store = await open_etcd_store(self.config.datastore)
        else:
            self.store = await open_sqlite_store(datastore_path(self.config.data_dir))
        issuer = f"https://kubernetes.default.svc.{self.config.cluster_domain}"
        key = load_or_create_key(self.config.data_dir / "server" / "tls" / "service.key")
        self.tokens = ServiceAccountTokens(key, issuer, [issuer], self.lookup_object)
        if self.authenticator is not None:
            self.authenticator.add_token_authenticator(self.tokens.authenticate)
            self.authenticator.add_token_authenticator(BootstrapTokenAuthenticator(self.lookup_object))
        self.store.start_compactor()
        if self.encryption.automatic_reload:
            self.background.append(asyncio.create_task(self.encryption.watch()))
        for resource in self.registry.storage_resources():
            self._add_storage(resource)
        await asyncio.gather(*(c.start() for c in self.caches.values()))
        feed_from_caches(self.node_graph, {plural: self.caches[f"/registry/{plural}/"]
                                           for plural in ("pods", "persistentvolumes", "nodes")})
        for cached in self.caches["/registry/services/"].list("/registry/services/")[0]:
            self.service_allocations.restore(cached.obj)
        builtin_group_versions = [(g, v) for g, versions in self.registry.groups().items() for v in versions]
        await bootstrap(self)
        if self.config.token:
            await ensure_join_token(self, self.config.token)
        self.authorizer, self.rbac = build_chain(self, self.config.authorization_modes)
        await reconcile_bootstrap_policy(self)
        await self.crds.start()
        autoregister = AutoRegister(self, builtin_group_versions)
        await autoregister.sync_on_start()
        self.background.append(asyncio.create_task(autoregister.run()))
        tls = self.config.data_dir / "server" / "tls"
        self.aggregator = Aggregator(self, pki_mod.front_proxy_certificate(tls)
                                     if (tls / "server-ca.key").exists() else None)
        self.background.append(asyncio.create_task(self.aggregator.run()))
        self.ready = True

    def store_for(self, resource: Resource):
        """The Store as this resource's objects see it (encrypted at rest if configured)."""
        return self.encryption.store_for(self.store, resource.key_prefix(), resource.group, resource.plural)

    def _add_storage(self, resource: Resource) -> None:
        prefix = resource.key_prefix()
        store = self.store_for(resource)
        if prefix not in self.caches:
            self.caches[prefix] = WatchCache(store, prefix)
        key = (resource.group, resource.version, resource.plural)
        self.object_stores[key] = ObjectStore(resource, store, self.caches[prefix], self.strategy)

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
        await self.kubelets.close()
        if self.aggregator is not None:
            await self.aggregator.close()
        if self.store is not None:
            await self.store.close()
        self.audit.close()

    # ---- what other parts ask of the server -------------------------------

    def objects(self, resource: Resource) -> ObjectStore:
        storage = self.registry.storage_resource(resource)
        return self.object_stores[(storage.group, storage.version, storage.plural)]

    def objects_for(self, group: str, version: str, plural: str) -> ObjectStore:
        return self.objects(self.registry.lookup(group, version, plural))

    def _cached_obj(self, group, version, plural, namespace, name) -> dict | None:
        cached = self.objects_for(group, version, plural).get_cached(namespace, name)
        return cached.obj if cached else None

    # Resources other parts of the server look objects up in, by plural.
    LOOKUP_GROUPS = {"leases": ("coordination.k8s.io", "v1")}

    def lookup_object(self, plural: str, namespace: str, name: str) -> dict | None:
        """A live object of a core (or coordination) resource, from the cache."""
        group, version = self.LOOKUP_GROUPS.get(plural, ("", "v1"))
        return self._cached_obj(group, version, plural, namespace, name)

    def namespace(self, name: str) -> dict | None:
        return self._cached_obj("", "v1", "namespaces", "", name)

    def priority_class(self, name: str) -> dict | None:
        return self._cached_obj("scheduling.k8s.io", "v1", "priorityclasses", "", name)

    def default_priority_class(self) -> dict | None:
        store = self.objects_for("scheduling.k8s.io", "v1", "priorityclasses")
        for cached in store.cache.list(store.resource.key_prefix())[0]:
            if cached.obj.get("globalDefault"):
                return cached.obj
        return None

    async def check_disruption_allowed(self, pod: dict, dry_run: bool = False) -> None:
        """Refuse an eviction its PodDisruptionBudget forbids, or spend the budget for it."""
        await eviction.check_and_record(self, pod, dry_run)

    async def proxy_to_node(self, req, obj: dict) -> web.StreamResponse:
        """pods/log|exec|attach|portforward and nodes/proxy, served by the node's kubelet."""
        return await streams.proxy(req, obj)

    def node(self, name: str) -> dict | None:
        return self._cached_obj("", "v1", "nodes", "", name)

    def validate_fields(self, resource: Resource, body: dict, mode: str | None,
                        options_kind: str = "CreateOptions", raw: bytes | None = None) -> list[str]:
        """Type errors always fail; unknown fields (and, given the raw JSON
        body, duplicate fields) fail under Strict, warn under Warn.

        Returns the warning texts for the response's Warning headers.
        """
        mode = fieldcheck.validate_directive(mode, options_kind)
        schema = schemas().for_kind(resource.group, resource.version, resource.kind)
        if schema is None:
            return []
        checked = None
        if raw is not None and raw.lstrip()[:1] == b"{":
            try:
                checked = fieldcheck.check_raw(raw, schema, schemas())
            except (ValueError, RecursionError):
                # YAML flow style also starts with "{" but is not JSON: check the decoded body.
                checked = None
        if checked is not None:
            unknown, messages, type_errors = checked
        else:
            unknown, type_errors = fieldcheck.check_fields(body, schema, schemas())
            messages = fieldcheck.unknown_field_messages(unknown)
        patching = options_kind == "PatchOptions"
        if type_errors:
            if patching:  # upstream reports a patched object that won't decode as 422
                raise fieldcheck.patch_error(orjson.dumps(body).decode(), type_errors[0])
            raise fieldcheck.decode_error(resource.kind, resource.version, type_errors[0])
        if not messages:
            return []
        if mode == "Strict":
            if patching:
                raise fieldcheck.patch_strict_error(orjson.dumps(body).decode(), messages)
            raise fieldcheck.strict_error(resource.kind, resource.version, messages)
        fieldcheck.prune(body, unknown)
        return [] if mode == "Ignore" else messages

    # ---- HTTP -------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024,
                              middlewares=[*self.audit.middlewares(), self._middleware])
        self.audit.install(app)
        app.router.add_route("*", "/{tail:.*}", self._route)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler):
        try:
            return await handler(request)
        except errors.StatusError as err:
            return status_response(err)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as err:  # a bug must become a 500 Status, not a dropped connection
            log.exception("internal error serving %s %s", request.method, request.path)
            audit.panicked(err)
            return status_response(errors.internal_error(str(err) or type(err).__name__))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/healthz", "/livez", "/readyz") or path.startswith(("/healthz/", "/livez/", "/readyz/")):
            return self._health(path)
        user = self.authenticator.authenticate(request) if self.authenticator else None
        if user is None:
            user = self._anonymous(request)
        info = parse(path, request.method, request.query)
        audit.begin(user, info)
        user = impersonated(user, request.headers, self.authorizer)
        audit.impersonated(user)
        self._authorize(user, info, request.method, request.query)
        if path == "/version" or path == "/version/":
            return json_response(version_info())
        if path in oidc_discovery.PATHS and request.method == "GET":
            address = self.config.bind_address if self.config.bind_address != "0.0.0.0" else "127.0.0.1"
            return oidc_discovery.response(path, self.tokens, f"{address}:{self.config.port}")
        if path.startswith("/openapi/"):
            return self._openapi(request)
        if not info.prefix:
            raise errors.path_not_found()
        if info.prefix == "apis" and info.version and not self.registry.in_group_version(info.group, info.version):
            apiservice = self.aggregator.remote(info.group, info.version)
            if apiservice is not None:
                return await self.aggregator.proxy(request, apiservice, user)
        if not info.is_resource:
            return self._discovery(request, info)
        resource = self.registry.lookup(info.group, info.version, info.resource)
        if resource is None:
            raise errors.path_not_found()
        return await handlers.handle(handlers.Request(request, info, resource, user, self))

    def _anonymous(self, request: web.Request) -> UserInfo:
        """With --anonymous-auth, a request without credentials is system:anonymous; else 401
        (a credential that fails is 401 either way, as upstream)."""
        if not self.config.anonymous_auth or bearer_token(request.headers) is not None:
            raise errors.unauthorized()
        return UserInfo(ANONYMOUS, groups=(ALL_UNAUTHENTICATED,))

    def _authorize(self, user, info, method: str, query=None) -> None:
        query = query if query is not None else {}
        if info.is_resource:
            name, field_selector = info.name, ""
            if info.verb in ("list", "watch"):
                # As upstream's RequestInfo: a list of one object by metadata.name names it.
                field_selector = query.get("fieldSelector", "")
                name = name or _selected_name(field_selector)
            attrs = Attributes(user=user, verb=info.verb, resource_request=True, namespace=info.namespace,
                               api_group=info.group, api_version=info.version, resource=info.resource,
                               subresource=info.subresource, name=name, path=info.path,
                               field_selector=field_selector)
        else:
            attrs = Attributes(user=user, verb=method.lower() if method != "HEAD" else "get",
                               resource_request=False, path=info.path)
        decision = self.authorizer.authorize(attrs)
        request_context.add_audit_annotation("authorization.k8s.io/decision",
                                             "allow" if decision.allowed else "forbid")
        request_context.add_audit_annotation("authorization.k8s.io/reason", decision.reason)
        if decision.allowed:
            return
        log.info("forbidden: user %r groups %r: %s %s", user.name, list(user.groups), attrs.verb, info.path)
        if not info.is_resource:
            raise errors.StatusError(403, "Forbidden", f'forbidden: User "{user.name}" cannot {attrs.verb} path '
                                                       f'"{info.path}"' + (f": {decision.reason}" if decision.reason
                                                                           else ""))
        raise errors.forbidden(user.name, attrs.verb, info.resource, info.group, info.name, info.namespace,
                               decision.reason, subresource=info.subresource)

    def _health(self, path: str) -> web.Response:
        ok = self.ready or path.startswith("/livez")
        if not ok:
            return web.Response(status=500, text="[-]storage not ready\nhealthz check failed\n")
        return web.Response(text="ok")

    def _openapi(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if "protobuf" in accept:
                # kube-openapi answers the protobuf form as plain octets (Go's mime parser rejects the '@').
                return web.Response(body=self.openapi.v2_protobuf(), content_type="application/octet-stream")
            if accept and "json" not in accept and "*/*" not in accept:
                raise errors.not_acceptable(accept)
            return json_response(self.openapi.v2_document())
        if path == "/openapi/v3":
            return json_response(self.openapi.v3_index())
        if path.startswith("/openapi/v3/"):
            status, headers, body = self.openapi.v3_response(path[len("/openapi/v3/"):], request.query.get("hash"),
                                                             request.headers.get("Accept"))
            if status == 404:
                raise errors.path_not_found()
            return web.Response(status=status, headers=headers, body=body)
        raise errors.path_not_found()

    def _discovery(self, request: web.Request, info) -> web.Response:
        accept = request.headers.get("Accept", "")
        aggregated = "as=APIGroupDiscoveryList" in accept
        if info.prefix == "api" and not info.version:
            if aggregated:
                return self._aggregated(accept, legacy=True)
            return json_response(discovery.api_versions(f"{self.config.bind_address}:{self.config.port}"))
        if info.prefix == "apis" and not info.group:
            if aggregated:
                return self._aggregated(accept, legacy=False)
            listed = discovery.api_group_list(self.registry)
            listed["groups"] += self.aggregator.group_entries()
            return json_response(listed)
        if info.prefix == "apis" and not info.version:
            body = discovery.api_group(self.registry, info.group) or next(
                ({"kind": "APIGroup", "apiVersion": "v1", **g} for g in self.aggregator.group_entries()
                 if g["name"] == info.group), None)
        else:
            body = discovery.api_resource_list(self.registry, info.group, info.version)
        if body is None:
            raise errors.path_not_found()
        return json_response(body)

    def _aggregated(self, accept: str, legacy: bool) -> web.Response:
        media = discovery.AGGREGATED_MEDIA
        first_v2 = accept.find("v=v2;")
        first_beta = accept.find("v=v2beta1")
        if first_beta != -1 and (first_v2 == -1 or first_beta < first_v2):
            media = discovery.AGGREGATED_MEDIA_V2BETA1
        body = discovery.aggregated(self.registry, legacy)
        if not legacy:
            body["items"] += self.aggregator.aggregated_items()
        if media == discovery.AGGREGATED_MEDIA_V2BETA1:
            body["apiVersion"] = "apidiscovery.k8s.io/v2beta1"
        return json_response(body, content_type=media)


def _selected_name(field_selector: str) -> str:
    from k8py.apimachinery.selectors import parse_field_selector
    try:
        return parse_field_selector(field_selector).exact_name() or ""
    except errors.StatusError:
        return ""


def default_hostname() -> str:
    return socket.gethostname().lower()
