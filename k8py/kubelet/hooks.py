"""postStart and preStop lifecycle hooks (exec, httpGet, sleep)."""

from __future__ import annotations

import asyncio

from k8py.kubelet import probe_actions


def pod_description(pod: dict) -> str:
    m = pod.get("metadata") or {}
    return f"{m.get('name', '')}_{m.get('namespace', '')}({m.get('uid', '')})"


async def run_hook(runtime, handler: dict, pod: dict, container: dict, container_id: str, pod_ip: str,
                   timeout: float) -> str | None:
    """Run one hook; None when it worked, else the failure message as the kubelet words it."""
    name = container.get("name", "")
    if handler.get("exec"):
        command = [str(a) for a in handler["exec"].get("command") or []]
        joined = " ".join(command)
        try:
            code, raw = await asyncio.wait_for(runtime.exec_sync(container_id, command, timeout), timeout + 1)
            output = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
            if code == 0:
                return None
            error = f"command '{joined}' exited with {code}: {output}"
        except asyncio.TimeoutError:
            output, error = "", f"command '{joined}' timed out"
        except Exception as e:
            output, error = "", str(e)
        # Go prints the argv slice as [a b c].
        return (f"Exec lifecycle hook ([{joined}]) for Container \"{name}\" in Pod \"{pod_description(pod)}\" "
                f"failed - error: {error}, message: \"{output}\"")
    if handler.get("httpGet"):
        action = handler["httpGet"]
        ok, message, _ = await probe_actions.run_http_get(action, container, pod_ip, timeout)
        if ok:
            return None
        return (f"HTTP lifecycle hook ({action.get('path', '')}) for Container \"{name}\" in Pod "
                f"\"{pod_description(pod)}\" failed - error: {message}, message: \"\"")
    if handler.get("sleep"):
        await asyncio.sleep(min(float(handler["sleep"].get("seconds") or 0), timeout))
        return None
    if handler.get("tcpSocket"):
        return None       # deprecated and ignored by the kubelet
    return None
