"""Wire protocols of the kubelet's streaming API: channelled WebSocket
(exec, attach, port-forward), SPDY/3.1 (kubectl's port-forward tunnel) and
CRI container log files."""
