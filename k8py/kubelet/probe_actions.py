"""The three probe/handler actions: exec in the container, HTTP GET, TCP connect.

Each returns (ok, message) with the kubelet's wording, so the same code serves
probes (Unhealthy events) and lifecycle hooks (FailedPostStartHook).
"""

from __future__ import annotations

import asyncio
import socket
import ssl

import aiohttp

USER_AGENT = "kube-probe/1.32"
_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


def resolve_port(port, container: dict) -> int:
    """A port number, or the number of a named containerPort."""
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text:
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {text} in {container.get('name')}")


async def run_exec(runtime, container_id: str, command: list[str], timeout: float) -> tuple[bool, str]:
    try:
        code, output = await asyncio.wait_for(runtime.exec_sync(container_id, list(command), timeout),
                                              timeout + 1)
    except asyncio.TimeoutError:
        return False, f"command {' '.join(command)!r} timed out"
    except Exception as e:   # the container went away or the runtime refused
        return False, str(e)
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output or "")
    if code == 0:
        return True, text
    return False, text or f"command {' '.join(command)!r} exited with {code}"


async def run_http_get(action: dict, container: dict, pod_ip: str, timeout: float) -> tuple[bool, str, int]:
    """(ok, message, status code or 0)."""
    scheme = (action.get("scheme") or "HTTP").lower()
    host = action.get("host") or pod_ip
    try:
        port = resolve_port(action.get("port"), container)
    except ValueError as e:
        return False, str(e), 0
    path = action.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{host}:{port}{path}"
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    for h in action.get("httpHeaders") or []:
        headers[h.get("name", "")] = h.get("value", "")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers=headers, ssl=_INSECURE if scheme == "https" else False,
                                   allow_redirects=True, max_redirects=10) as resp:
                body = await resp.content.read(10 * 1024)
                if 200 <= resp.status < 400:
                    return True, body.decode("utf-8", "replace"), resp.status
                return False, f"HTTP probe failed with statuscode: {resp.status}", resp.status
    except asyncio.TimeoutError:
        return False, (f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting '
                       f'headers)'), 0
    except aiohttp.ClientConnectorError as e:
        return False, f'Get "{url}": dial tcp {host}:{port}: connect: {_reason(e.os_error)}', 0
    except aiohttp.ClientError as e:
        return False, f'Get "{url}": {e}', 0


async def run_tcp(action: dict, container: dict, pod_ip: str, timeout: float) -> tuple[bool, str]:
    host = action.get("host") or pod_ip
    try:
        port = resolve_port(action.get("port"), container)
    except ValueError as e:
        return False, str(e)
    try:
        # In a thread, so the kernel times the connect: the event loop is shared with the API
        # server and may stall for a second on a loaded node, which is not the container's fault.
        await asyncio.to_thread(_connect, host, port, timeout)
    except TimeoutError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as e:
        return False, f"dial tcp {host}:{port}: connect: {_reason(e)}"
    return True, ""


def _connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _reason(error: OSError | None) -> str:
    import errno
    if error is None:
        return "connection refused"
    return {errno.ECONNREFUSED: "connection refused", errno.EHOSTUNREACH: "no route to host",
            errno.ENETUNREACH: "network is unreachable"}.get(error.errno, (error.strerror or str(error)).lower())
