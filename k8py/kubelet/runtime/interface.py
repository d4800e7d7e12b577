"""The runtime interface the kubelet drives: a small CRI in Python.

The kubelet decides *what* runs (pod workers, restarts, probes); a runtime
decides *how* (runc bundles, or nothing at all for simulated nodes). Sandboxes
hold a pod's shared namespaces; containers join them. Every object carries
labels so a restarted kubelet can find and adopt what it left running.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

# Labels every sandbox and container carries, so state survives a kubelet restart.
LABEL_POD_UID = "io.kubernetes.pod.uid"
LABEL_POD_NAME = "io.kubernetes.pod.name"
LABEL_POD_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CONTAINER_NAME = "io.kubernetes.container.name"
LABEL_RESTART_COUNT = "io.kubernetes.container.restartCount"


@dataclass
class SandboxConfig:
    pod_uid: str
    name: str
    namespace: str
    hostname: str
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    share_process_namespace: bool = False
    cgroup_parent: str = ""          # e.g. "k8py/pod<uid>" under each controller
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Sandbox:
    id: str
    pod_uid: str
    netns_path: str | None           # None with hostNetwork
    ipc_ns_path: str | None
    uts_ns_path: str | None
    pid_ns_path: str | None          # set only with shareProcessNamespace
    cgroup_parent: str
    labels: dict[str, str] = field(default_factory=dict)
    ip: str | None = None            # filled in by the network plugin


@dataclass
class Mount:
    container_path: str
    host_path: str
    read_only: bool = False


@dataclass
class ContainerConfig:
    name: str
    image: str                       # reference as resolved by the image service
    command: list[str] = field(default_factory=list)   # overrides the image ENTRYPOINT when set
    args: list[str] = field(default_factory=list)      # overrides the image CMD when set
    env: list[tuple[str, str]] = field(default_factory=list)
    working_dir: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    cpu_shares: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    memory_limit_bytes: int | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    supplemental_groups: list[int] = field(default_factory=list)
    read_only_root_filesystem: bool = False
    privileged: bool = False
    capabilities_add: list[str] = field(default_factory=list)
    capabilities_drop: list[str] = field(default_factory=list)
    allow_privilege_escalation: bool = True
    log_path: str = ""               # CRI-format log file the runtime writes
    labels: dict[str, str] = field(default_factory=dict)
    # the container whose process namespace this one joins (CRI's NamespaceMode TARGET:
    # an ephemeral container with targetContainerName); None: the sandbox's, or its own
    pid_namespace_of: str | None = None


@dataclass
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    state: str                       # "created" | "running" | "exited" | "unknown"
    image: str = ""
    image_id: str = ""
    pid: int | None = None
    exit_code: int | None = None
    created_at: float | None = None  # unix seconds
    started_at: float | None = None
    finished_at: float | None = None
    oom_killed: bool = False
    reason: str = ""
    message: str = ""
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class ContainerStats:
    cpu_usage_ns: int                    # cumulative CPU time
    memory_working_set_bytes: int        # usage minus inactive file pages (what eviction and `top` count)
    memory_usage_bytes: int = 0
    memory_rss_bytes: int = 0
    page_faults: int = 0
    major_page_faults: int = 0


@dataclass
class ImageInfo:
    id: str                          # "sha256:<config digest>"
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    config: dict                     # OCI image config: Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts


class ImageError(Exception):
    """A pull or lookup failed; `reason` is ErrImagePull, ImagePullBackOff, InvalidImageName, ..."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class ImageService(abc.ABC):
    @abc.abstractmethod
    async def pull(self, reference: str, credentials: list[dict] | None = None) -> ImageInfo:
        """Fetch an image; credentials are docker config `auths` entries from imagePullSecrets."""

    @abc.abstractmethod
    def get(self, reference: str) -> ImageInfo | None: ...

    @abc.abstractmethod
    def list(self) -> list[ImageInfo]: ...

    @abc.abstractmethod
    def remove(self, reference: str) -> None: ...


class Runtime(abc.ABC):
    name: str = ""
    version: str = ""

    @abc.abstractmethod
    async def run_sandbox(self, config: SandboxConfig) -> Sandbox:
        """Create the pod's shared namespaces (net, ipc, uts; pid when shared) and cgroup."""

    @abc.abstractmethod
    async def remove_sandbox(self, sandbox_id: str) -> None:
        """Kill what is left in it and release its namespaces and cgroup. Idempotent."""

    @abc.abstractmethod
    async def list_sandboxes(self) -> list[Sandbox]: ...

    @abc.abstractmethod
    async def create_container(self, sandbox: Sandbox, config: ContainerConfig) -> str:
        """Prepare the container (bundle, rootfs) and return its id; it does not run yet."""

    @abc.abstractmethod
    async def start_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    async def stop_container(self, container_id: str, timeout: float) -> None:
        """SIGTERM, then SIGKILL once `timeout` seconds have passed. Idempotent."""

    @abc.abstractmethod
    async def remove_container(self, container_id: str) -> None: ...

    @abc.abstractmethod
    async def container_status(self, container_id: str) -> ContainerStatus: ...

    @abc.abstractmethod
    async def list_containers(self) -> list[ContainerStatus]: ...

    @abc.abstractmethod
    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> tuple[int, bytes]:
        """Run a command in the container (probes, hooks); returns (exit code, combined output)."""

    @abc.abstractmethod
    async def stats(self, container_id: str) -> ContainerStats | None: ...
