"""The channel.k8s.io WebSocket protocols (v1 to v5).

Every binary message starts with one byte naming its channel: 0 stdin,
1 stdout, 2 stderr, 3 error, 4 resize (JSON {"Width","Height"}, from v3).
The error channel carries a metav1.Status as JSON when the command ends
(v4 and v5) or, before v4, the error text and nothing on success. v5 adds
channel 255: `\xff<n>` closes channel n (the client closes stdin this way).

The base64 variants (base64.channel.k8s.io, v4.base64.channel.k8s.io) send
text messages instead: the channel as an ASCII digit, then the payload in
base64. A client offering no subprotocol at all gets the plain binary
protocol (channel.k8s.io for exec and attach, v4 for port-forward), as
upstream's kubelet does.
"""

from __future__ import annotations

import base64

import orjson

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V2 = "v2.channel.k8s.io"
V1 = "channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
NO_PROTOCOL = ""                 # the client offered none
EXEC_PROTOCOLS = (V5, V4, V3, V2, V1)           # X-Stream-Protocol-Version over SPDY
EXEC_WEBSOCKET_PROTOCOLS = (V5, V4, V4_BASE64, V1, V1_BASE64, NO_PROTOCOL)
STATUS_PROTOCOLS = (V5, V4, V4_BASE64)          # the error channel carries JSON Status
BASE64_PROTOCOLS = (V4_BASE64, V1_BASE64)
PORT_FORWARD_PROTOCOLS = (V4, V4_BASE64, NO_PROTOCOL)
SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
PORT_FORWARD_SPDY = "portforward.k8s.io"

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes([channel]) + data


def split(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise ValueError("empty channel message")
    return message[0], message[1:]


async def send(ws, protocol: str, channel: int, data: bytes = b"") -> None:
    """One message on a channel, framed as protocol wants."""
    if protocol in BASE64_PROTOCOLS:
        await ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
    else:
        await ws.send_bytes(frame(channel, data))


def decode(protocol: str, message: bytes | str) -> tuple[int, bytes] | None:
    """(channel, payload) of a client message; None for an empty or undecodable one."""
    if not message:
        return None
    if protocol in BASE64_PROTOCOLS:
        text = message.decode("ascii", "replace") if isinstance(message, bytes) else message
        try:
            return ord(text[0]) - ord("0"), base64.b64decode(text[1:], validate=True)
        except ValueError:   # binascii.Error: not base64, dropped as upstream drops it
            return None
    data = message.encode() if isinstance(message, str) else message
    return data[0], data[1:]


def close_frame(channel: int) -> bytes:
    return bytes([CLOSE, channel])


def parse_resize(data: bytes) -> tuple[int, int] | None:
    """(cols, rows) from a resize message, None when it is not one."""
    try:
        size = orjson.loads(data)
        return int(size["Width"]), int(size["Height"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def success_status() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, argv: list[str] | None = None) -> dict:
    """Status for a finished command; kubectl exits with the ExitCode cause."""
    if code == 0:
        return success_status()
    what = f"command '{' '.join(argv)}'" if argv else "command"
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: {what} exited with {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_message(protocol: str, status: dict) -> bytes | None:
    """What the error channel carries for this Status under protocol (None: nothing)."""
    if protocol in STATUS_PROTOCOLS:
        return orjson.dumps(status)
    if status.get("status") == "Success":
        return None
    return (status.get("message") or "error").encode()


def error_status(message: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError",
            "details": {"causes": [{"message": message}]}, "code": 500}


def choose_protocol(offered: str | None, supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offered that we speak (client order wins);
    NO_PROTOCOL when the client offered none and that is supported."""
    wanted = [p.strip() for p in (offered or "").split(",") if p.strip()] or [NO_PROTOCOL]
    for proto in wanted:
        if proto in supported:
            return proto
    return None


def port_prefix(port: int) -> bytes:
    """First message on each port-forward channel: the port, little-endian."""
    return port.to_bytes(2, "little")
