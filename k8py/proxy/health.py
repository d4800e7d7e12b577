"""kube-proxy's /healthz, /livez and /metrics (upstream: :10256 and :10249; ours on 127.0.0.1).

Healthy means the rules are current: a first sync has happened and no change
has been waiting for longer than HEALTH_TIMEOUT (a proxier stuck failing to
write iptables turns unhealthy).
"""

from __future__ import annotations

import datetime
import logging
import time

import orjson
from aiohttp import web

from k8py.proxy.proxier import Proxier

log = logging.getLogger("k8py.proxy.health")

HEALTH_TIMEOUT = 60.0


def _stamp(wall: float) -> str:
    return datetime.datetime.fromtimestamp(wall, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %z UTC")


def health(proxier: Proxier) -> tuple[bool, dict]:
    now_wall, now = time.time(), time.monotonic()
    synced = proxier.syncs > 0
    waiting = proxier.pending_since is not None and now - proxier.pending_since > HEALTH_TIMEOUT
    last = now_wall - (now - proxier.last_sync_at) if proxier.last_sync_at else now_wall
    return synced and not waiting, {"lastUpdated": _stamp(last), "currentTime": _stamp(now_wall),
                                    "nodeEligible": True}


def metrics_text(proxier: Proxier) -> str:
    return "\n".join([
        "# HELP kubeproxy_sync_proxy_rules_last_duration_seconds Duration of the last iptables sync",
        "# TYPE kubeproxy_sync_proxy_rules_last_duration_seconds gauge",
        f"kubeproxy_sync_proxy_rules_last_duration_seconds {proxier.last_sync_seconds:.6f}",
        "# HELP kubeproxy_sync_proxy_rules_total Number of iptables syncs",
        "# TYPE kubeproxy_sync_proxy_rules_total counter",
        f"kubeproxy_sync_proxy_rules_total {proxier.syncs}",
        "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds When the last sync finished",
        "# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge",
        f"kubeproxy_sync_proxy_rules_last_timestamp_seconds "
        f"{time.time() - (time.monotonic() - proxier.last_sync_at) if proxier.last_sync_at else 0:.3f}",
        "# HELP kubeproxy_sync_proxy_rules_iptables_total Rules kube-proxy programmed, by table",
        "# TYPE kubeproxy_sync_proxy_rules_iptables_total gauge",
        f'kubeproxy_sync_proxy_rules_iptables_total{{table="nat"}} {proxier.nat_rule_count()}',
        "",
    ])


async def serve(proxier: Proxier, host: str, port: int) -> web.AppRunner | None:
    """Start the endpoints; None (logged) when the address is taken, as the proxy works without them."""
    async def healthz(_request):
        ok, body = health(proxier)
        return web.Response(body=orjson.dumps(body), status=200 if ok else 503, content_type="application/json")

    async def metrics(_request):
        return web.Response(text=metrics_text(proxier), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/livez", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        log.warning("kube-proxy health endpoints not served on %s:%d: %s", host, port, e)
        await runner.cleanup()
        return None
    return runner
