"""The per-container shim: `python -m k8py.kubelet.runtime.shim <bundle>`, or forked from
the shim zygote (`python -m k8py.kubelet.runtime.shim --serve`, see `serve`).

It outlives the kubelet, so a kubelet restart loses nothing:
- starts the container with `runc run --detach`, owning its stdio pipes (or its
  pty master, with a tty) and, as child subreaper, becomes the parent of the
  container's init process, so it can collect the real exit status;
- writes stdout/stderr to the CRI log file (rotating by size);
- serves attach clients on `<bundle>/attach.sock`;
- records `started.json` and, when the process ends, `exit.json` (exit code,
  time, whether the cgroup saw an OOM kill) for the kubelet to read.

The first line on its stdout tells the kubelet `ok <pid>` or `err <message>`.
Frames on the attach socket: 1 byte type, 4 bytes big-endian length, payload.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time

from k8py.kubelet.runtime.crilog import LineSplitter, RotatingLog, format_line

PR_SET_CHILD_SUBREAPER = 36
FRAME_STDIN, FRAME_STDOUT, FRAME_STDERR, FRAME_RESIZE, FRAME_CLOSE_STDIN, FRAME_EXIT = range(6)
# A created (not yet started) container: the kubelet sends START, the shim answers STARTED
# with `ok <pid>` or `err <message>`.
FRAME_START, FRAME_STARTED = 6, 7
DRAIN_AFTER_EXIT = 2.0


def frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BI", kind, len(payload)) + payload


def write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def proc_start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def oom_kills(files: list[str]) -> int:
    total = 0
    for path in files:
        try:
            with open(path) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        total += int(value)
        except (OSError, ValueError):
            pass
    return total


def runc_error(log_path: str, verb: str = "create") -> str:
    message = ""
    try:
        with open(log_path) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", message)
    except OSError:
        pass
    message = (message or "runc failed to start the container")
    for prefix in ("runc run failed: ", "runc create failed: ", "runc start failed: "):
        message = message.removeprefix(prefix)
    # Worded as containerd reports it, which is what `kubectl describe` users know.
    if verb == "start":
        return f"failed to start containerd task: OCI runtime start failed: {message}: unknown"
    return ("failed to create containerd task: failed to create shim task: OCI runtime create failed: "
            f"runc create failed: {message}: unknown")


def recv_console(listener: socket.socket, runc: subprocess.Popen, timeout: float = 30) -> int | None:
    """The pty master runc hands over on --console-socket."""
    listener.settimeout(0.1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            if runc.poll() is not None:
                return None
            continue
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
            return fds[0] if fds else None
    return None


class Shim:
    def __init__(self, bundle: str):
        os.chdir(bundle)
        with open("shim.json") as f:
            self.opts = json.load(f)
        self.log = RotatingLog(self.opts["log_path"], self.opts.get("log_max_size", 10 << 20),
                               self.opts.get("log_max_files", 5))
        self.streams: dict[int, tuple[str, LineSplitter]] = {}
        self.stdin_fd: int | None = None
        self.pending_stdin = bytearray()     # written as the container reads: the shim never blocks on it
        self.stdin_eof = False
        self.master: int | None = None
        self.clients: dict[socket.socket, bytearray] = {}
        self.stdin_client: socket.socket | None = None
        self.pid = 0
        self.exit_code: int | None = None

    def start(self) -> bool:
        o = self.opts
        # Listen before reporting "ok": an attach may follow the start at once.
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists("attach.sock"):
            os.unlink("attach.sock")
        self.listener.bind("attach.sock")
        self.listener.listen(16)
        # create_only: `runc create` now (namespaces, mounts, cgroup: the slow part), the user
        # process starts when the kubelet sends START, e.g. once the pod network is wired.
        self.created_only = bool(o.get("create_only"))
        verb = ["create"] if self.created_only else ["run", "--detach"]
        cmd = [*self.runc_base(), *verb, "--pid-file", "pid", "--bundle", "."]
        devnull = os.open(os.devnull, os.O_RDWR)
        console = None
        if o.get("tty"):
            console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            if os.path.exists("console.sock"):
                os.unlink("console.sock")
            console.bind("console.sock")
            console.listen(1)
            cmd += ["--console-socket", "console.sock"]
            stdio = (devnull, devnull, devnull)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.streams = {out_r: ("stdout", LineSplitter()), err_r: ("stderr", LineSplitter())}
            in_r = devnull
            if o.get("stdin"):
                in_r, self.stdin_fd = os.pipe()
            stdio = (in_r, out_w, err_w)
        runc = subprocess.Popen(cmd + [o["id"]], stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
        if console is not None:
            self.master = recv_console(console, runc)
            console.close()
            if self.master is not None:
                self.streams = {self.master: ("stdout", LineSplitter())}
                self.stdin_fd = self.master if o.get("stdin") else None
        rc = runc.wait()
        for fd in set(stdio):
            if fd not in self.streams and fd != self.stdin_fd:
                os.close(fd)
        if rc != 0 or (o.get("tty") and self.master is None):
            message = runc_error("runc.log")
            write_json("start-error.json", {"message": message, "at": time.time()})
            print(f"err {message}", flush=True)
            return False
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
        with open("pid") as f:
            self.pid = int(f.read().strip())
        if self.created_only:
            write_json("created.json", {"pid": self.pid, "shim_pid": os.getpid(),
                                        "pid_start_time": proc_start_time(self.pid)})
        else:
            self.record_started()
        print(f"ok {self.pid}", flush=True)
        return True

    def runc_base(self) -> list[str]:
        return [self.opts["runc"], "--root", self.opts["runc_root"], "--log", "runc.log", "--log-format", "json"]

    def record_started(self) -> None:
        write_json("started.json", {"pid": self.pid, "started_at": time.time(), "shim_pid": os.getpid(),
                                    "pid_start_time": proc_start_time(self.pid)})

    def start_created(self) -> str:
        """Let a created container's process run (`runc start`); the reply for the kubelet."""
        if os.path.exists("started.json"):
            return f"ok {self.pid}"
        if os.path.exists("start-error.json"):
            with open("start-error.json") as f:
                return "err " + json.load(f)["message"]
        if self.exit_code is None:
            released = self.release_exec_fifo()
            if released is None:          # no fifo where runc 1.x keeps it: ask runc itself
                result = subprocess.run([*self.runc_base(), "start", self.opts["id"]], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                released = result.returncode == 0
            if released:
                self.record_started()
                return f"ok {self.pid}"
            message = runc_error("runc.log", "start")
        else:
            message = "the container's process ended before it was started"
        write_json("start-error.json", {"message": message, "at": time.time()})
        return f"err {message}"

    def release_exec_fifo(self, timeout: float = 10.0) -> bool | None:
        """Do what `runc start` does, without starting another runc: runc's init waits (before
        exec) to open `<runc root>/<id>/exec.fifo` for writing; a reader lets it write one byte
        and exec, the fifo's end-of-file says it did, and removing the fifo marks the container
        running in runc's state. None when there is no such fifo (not runc 1.x's layout)."""
        path = os.path.join(self.opts["runc_root"], self.opts["id"], "exec.fifo")
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        data = b""
        deadline = time.monotonic() + timeout
        try:
            # Linux reports no hang-up on a fifo before its first writer came and went, so
            # this waits for init's byte and then for its exec (which closes its end).
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    if not process_alive(self.pid):
                        return False
                    continue
                chunk = os.read(fd, 16)
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        if data != b"0":
            return False
        os.unlink(path)
        return True

    # --- the loop ---

    def emit(self, fd: int, data: bytes) -> None:
        name, splitter = self.streams[fd]
        records = splitter.feed(data) if data else splitter.flush()
        for tag, line in records:
            self.log.write(format_line(name, tag, line))
        if data:
            self.broadcast(frame(FRAME_STDOUT if name == "stdout" else FRAME_STDERR, data))

    def broadcast(self, payload: bytes) -> None:
        for client in list(self.clients):
            try:
                client.sendall(payload)
            except OSError:
                self.drop(client)

    def send(self, client: socket.socket, payload: bytes) -> None:
        try:
            client.sendall(payload)
        except OSError:
            self.drop(client)

    def drop(self, client: socket.socket) -> None:
        self.clients.pop(client, None)
        client.close()
        if client is self.stdin_client and self.opts.get("stdin_once"):
            self.close_stdin()

    def close_stdin(self) -> None:
        if self.pending_stdin and self.stdin_fd is not None:
            self.stdin_eof = True            # close once what was sent has been delivered
            return
        if self.stdin_fd is not None and self.stdin_fd != self.master:
            os.close(self.stdin_fd)
        self.stdin_fd = None
        self.pending_stdin.clear()

    def flush_stdin(self) -> None:
        try:
            while self.pending_stdin:
                del self.pending_stdin[:os.write(self.stdin_fd, self.pending_stdin)]
        except BlockingIOError:
            return
        except OSError:
            self.pending_stdin.clear()
        if self.stdin_eof:
            self.close_stdin()

    def client_input(self, client: socket.socket) -> None:
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        buf = self.clients[client]
        buf += data
        while len(buf) >= 5:
            kind, length = struct.unpack(">BI", buf[:5])
            if len(buf) < 5 + length:
                break
            payload = bytes(buf[5:5 + length])
            del buf[:5 + length]
            if kind == FRAME_STDIN and self.stdin_fd is not None:
                self.stdin_client = client
                self.pending_stdin += payload
                self.flush_stdin()
            elif kind == FRAME_CLOSE_STDIN and self.opts.get("stdin_once"):
                self.close_stdin()
            elif kind == FRAME_START:
                self.send(client, frame(FRAME_STARTED, self.start_created().encode()))
            elif kind == FRAME_RESIZE and self.master is not None:
                cols, rows = (int(x) for x in payload.split())
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
                if self.exit_code < 0:
                    self.exit_code = 128 - self.exit_code     # killed by signal N -> 128+N

    def run(self) -> None:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        listener = self.listener
        exited_at = None
        self.reap()
        while True:
            if self.exit_code is not None and exited_at is None:
                exited_at = time.monotonic()
            if exited_at is not None and (not self.streams or time.monotonic() - exited_at > DRAIN_AFTER_EXIT):
                break
            watch = [wake_r, listener, *self.streams, *self.clients]
            writers = [self.stdin_fd] if self.pending_stdin and self.stdin_fd is not None else []
            ready, writable, _ = select.select(watch, writers, [], 0.5)
            if writable:
                self.flush_stdin()
            for fd in ready:
                if fd == wake_r:
                    os.read(wake_r, 4096)
                    self.reap()
                elif fd is listener:
                    conn, _ = listener.accept()
                    conn.settimeout(2)
                    self.clients[conn] = bytearray()
                elif isinstance(fd, socket.socket):
                    self.client_input(fd)
                else:
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    except OSError as exc:       # a pty master reads EIO once the slave side is gone
                        if exc.errno != errno.EIO:
                            raise
                        data = b""
                    self.emit(fd, data)
                    if not data:
                        del self.streams[fd]
                        os.close(fd)
            self.reap()
        for fd in list(self.streams):
            self.emit(fd, b"")
        oom = oom_kills(self.opts.get("oom_files", [])) > 0
        write_json("exit.json", {"exit_code": self.exit_code, "finished_at": time.time(), "oom_killed": oom})
        self.broadcast(frame(FRAME_EXIT, str(self.exit_code).encode()))
        for client in list(self.clients):
            client.close()
        listener.close()
        self.log.close()


def run_detached(bundle: str) -> int:
    """Become the shim: fork away from the caller (which exits at once, so nothing in the kubelet,
    e.g. asyncio's subprocess transports that kill children they still own, can take the shim
    down), start a new session, and supervise the container until it ends.

    Called with fd 1 the channel for the `ok <pid>` / `err <message>` line."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    shim = Shim(bundle)
    if not shim.start():
        return 1
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)              # the kubelet stops listening after the first line
    shim.run()
    return 0


def serve(control: socket.socket) -> int:
    """The shim zygote: a process that has already paid for the interpreter and the imports
    above and forks one shim per request, so a container start costs a fork instead of a new
    Python. A request is a SOCK_SEQPACKET message: the bundle path, with the write end of the
    kubelet's report pipe attached. The zygote ends when the kubelet closes its end; the shims
    it forked are their own sessions by then and live on."""
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    devnull = os.open(os.devnull, os.O_RDWR)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 4096, 1)
        except ConnectionResetError:
            return 0
        if not message:
            return 0
        if not fds:
            continue
        report = fds[0]
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                control.close()
                os.dup2(devnull, 0)
                os.dup2(report, 1)
                os.close(report)
                bundle = message.decode()
                log_fd = os.open(os.path.join(bundle, "shim.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(log_fd, 2)
                os.close(log_fd)
                code = run_detached(bundle)
            except BaseException:       # never return into the zygote's loop in a forked child
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(report)
        os.waitpid(pid, 0)          # the go-between exits as soon as the shim has forked away


def main() -> int:
    if sys.argv[1:2] == ["--serve"]:
        return serve(socket.socket(fileno=0))
    return run_detached(sys.argv[1])


if __name__ == "__main__":
    sys.exit(main())
