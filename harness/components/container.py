"""The Boot Proxy as a container: any image that speaks our CLI/env contract is testable.

The container starts with ``--network none`` and waits at a gate; the harness
then moves the lab-built interface of the proxy's host (``eth0``, ``eth1``, …)
from that host's namespace into the container's, re-adds its lab address,
and opens the gate. The container sees only the lab; it carries the Docker
label ``io.flexlab.lab=<id>`` so ``flexlab clean`` finds it after a crash.
Capabilities are dropped to NET_RAW and NET_BIND_SERVICE.

Docker is driven through its SDK. Readiness reads a followed log stream and
Docker's event stream (``die``/``oom``) kept by two background threads, so a
container that dies while we wait fails the wait at once with its last lines,
and no ``docker inspect``/``docker logs`` runs on every poll.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container

from harness.components.base import Component
from harness.components.bootproxy import METRICS_PORT, proxy_ready, wait_proxy_ready
from harness.errors import ComponentError, DependencyError
from harness.lab import names
from harness.lab.lab import Lab
from harness.lab.netlink import ns_route
from harness.lab.waits import wait_for

DEFAULT_IMAGE = "flexlab/bootproxy:latest"
STATE = "/var/lib/flexlab"   # the lab's state directory for this proxy, mounted
GATE_NAME = "start-gate"
# the shell gate keeps the proxy from binding before its interfaces exist; the harness
# opens it by creating the file in the mounted state directory (no exec round trip)
ENTRY = (f'while [ ! -e {STATE}/{GATE_NAME} ]; do sleep 0.02; done; '
         'exec python3 -m bootproxy "$@"')


def docker_client() -> docker.DockerClient:
    """A client for the local engine, or a DependencyError that says how to get one."""
    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise DependencyError(f"no Docker engine reachable ({exc}): apt-get install docker.io "
                              "(make setup) and start dockerd") from exc


@contextlib.contextmanager
def engine_answers(what: str) -> Iterator[None]:
    """Turn the engine going away during ``what`` into a DependencyError (the host's:
    ``flexlab run`` exits 3). The SDK lets a dead socket through as the ``requests``
    library's ConnectionError, an OSError, not as one of its own errors."""
    try:
        yield
    except (docker.errors.DockerException, OSError) as exc:
        if isinstance(exc, docker.errors.APIError):
            raise  # the engine answered: the caller decides what its no means
        raise DependencyError(f"the Docker engine stopped answering while {what} ({exc}): "
                              "is dockerd running?") from exc


def image_present(image: str) -> bool:
    """Whether ``image`` is built (or pulled) on the local engine."""
    try:
        docker_client().images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


class _Streams:
    """The container's log stream and its die/oom events, each read by a daemon thread.

    The events stream is opened before the container is created, so a death right
    after start is never missed; the log stream is followed from the container's start.
    """

    def __init__(self, client: docker.DockerClient, name: str, since: float) -> None:
        self._lock = threading.Lock()
        self._chunks: list[str] = []
        self.died = threading.Event()
        self.exit_code: int | None = None
        self.oom = False
        self._events = client.events(decode=True, since=int(since),
                                     filters={"container": name, "event": ["die", "oom"]})
        self._log_stream: Any = None
        self._log_thread: threading.Thread | None = None
        self._event_thread = threading.Thread(target=self._read_events, daemon=True,
                                              name=f"events-{name}")
        self._event_thread.start()

    def follow_logs(self, container: Container, since: float) -> None:
        """Start following ``container``'s stdout and stderr."""
        self._log_stream = container.logs(stream=True, follow=True, since=int(since))
        self._log_thread = threading.Thread(target=self._read_logs, daemon=True,
                                            name=f"logs-{container.name}")
        self._log_thread.start()

    def _read_events(self) -> None:
        with contextlib.suppress(Exception):  # the stream is closed under us on stop
            for event in self._events:
                if event.get("status") == "oom":
                    self.oom = True
                elif event.get("status") == "die":
                    code = event.get("Actor", {}).get("Attributes", {}).get("exitCode", "")
                    self.exit_code = int(code) if str(code).isdigit() else None
                    self.died.set()
                    return

    def _read_logs(self) -> None:
        chunks: Iterator[bytes] = self._log_stream
        with contextlib.suppress(Exception):
            for chunk in chunks:
                with self._lock:
                    self._chunks.append(chunk.decode(errors="replace"))

    def text(self) -> str:
        """What the container printed so far; after its death, all of it (the stream ends)."""
        if self.died.is_set() and self._log_thread is not None:
            self._log_thread.join(timeout=5)
        with self._lock:
            return "".join(self._chunks)

    def close(self) -> None:
        """Close both streams; their threads end."""
        for stream in (self._events, self._log_stream):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()


class _Watched:
    """A container seen as the process the readiness conditions watch: its init PID,
    liveness and exit code from Docker's events, its output from the followed log stream."""

    def __init__(self, owner: BootProxyContainer, streams: _Streams) -> None:
        self.owner = owner
        self.streams = streams
        self.name = f"Boot Proxy container {owner.container}"

    @property
    def pid(self) -> int:
        return self.owner.pid

    def running(self) -> bool:
        return not self.streams.died.is_set()

    def returncode(self) -> int | None:
        if self.running():
            return None
        code = self.streams.exit_code
        return code if not self.streams.oom else (code if code is not None else 137)

    def output(self) -> str:
        return self.streams.text()

    def log_tail(self, lines: int = 30) -> str:
        tail = "\n".join(self.output().splitlines()[-lines:])
        return ("(killed: out of memory)\n" if self.streams.oom else "") + tail


class BootProxyContainer(Component):
    """A Boot Proxy image run in a container attached to the lab."""

    def __init__(self, lab: Lab, host: str, segments: list[str], *, image: str = DEFAULT_IMAGE,
                 cp_url: str | None = None, cp_token: str | None = None,
                 name: str | None = None, cp_ca: Path | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        """``cp_ca``: the CA the proxy verifies the Control Plane against; copied into the
        state directory the container mounts. ``extra_args``: more proxy flags."""
        self.lab = lab
        self.host = host
        self.segments = segments
        self.image = image
        self.cp_url = cp_url
        self.cp_token = cp_token
        self.cp_ca = cp_ca
        self.extra_args = list(extra_args)
        self.name = name or host
        self.container = f"{lab.id}-{self.name}"
        self.log_path = lab.reports_dir / "logs" / f"bootproxy-{self.name}.log"
        self.pid = 0
        self.state_dir = lab.temp_dir / f"bootproxy-{self.name}"
        self.ready_info: dict[str, Any] = {}
        self._client: docker.DockerClient | None = None
        self._handle: Container | None = None
        self._streams: _Streams | None = None
        # routes through the host's lab interfaces (e.g. back to a relayed segment): a moved
        # interface loses them, so they are re-added in the container, on every restart too
        self._routes: set[tuple[str, str, int, str]] = set()

    @property
    def _started(self) -> bool:
        return self._handle is not None

    def _args(self) -> list[str]:
        ifaces = ",".join(self.lab.link(self.host, s).host_iface for s in self.segments)
        args = ["--name", self.name, "--interfaces", ifaces, "--cache-path",
                f"{STATE}/assignments.json", "--http-port", "8080",
                "--metrics-host", "0.0.0.0", "--metrics-port", str(METRICS_PORT),
                "--pxe-equivalents", "HW-Client"]
        if self.cp_url:
            args += ["--cp-url", self.cp_url]
        if self.cp_ca:
            args += ["--cp-ca", f"{STATE}/cp-ca.pem"]
        return args + self.extra_args

    def start(self) -> None:
        """Run the container, move the lab interfaces in, open the gate. A failure after
        the container exists removes it: ``with proxy:`` only stops what started."""
        try:
            self._start()
        except BaseException:
            self._remove_after_failed_start()
            raise

    def _remove_after_failed_start(self) -> None:
        """Remove what a failed start left (by name too: the engine may have created the
        container and failed to say so); never raises over the start's own error."""
        with contextlib.suppress(Exception):
            self.stop()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.containers.get(self.container).remove(force=True)
        if self._streams is not None:
            self._streams.close()
            self._streams = None

    def _start(self) -> None:
        client = self._client = self._client or docker_client()
        with engine_answers(f"looking up {self.image}"):
            try:
                client.images.get(self.image)
            except docker.errors.ImageNotFound as exc:
                raise DependencyError(f"image {self.image} is not built here: run "
                                      "`make images`") from exc
        env = {"FLEXLAB_BP_CP_TOKEN": self.cp_token} if self.cp_token else {}
        # the assignment cache lives outside the container: nothing is lost on a restart
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / GATE_NAME).unlink(missing_ok=True)   # closed again on a restart
        if self.cp_ca:
            shutil.copyfile(self.cp_ca, self.state_dir / "cp-ca.pem")
        since = time.time() - 1
        with engine_answers(f"starting {self.container}"):
            self._streams = _Streams(client, self.container, since)
            try:
                self._handle = client.containers.run(
                    self.image, ["-c", ENTRY, "sh", *self._args()], entrypoint="/bin/sh",
                    name=self.container, network_mode="none", detach=True,
                    labels={names.DOCKER_LABEL: self.lab.id}, cap_drop=["ALL"],
                    cap_add=["NET_RAW", "NET_BIND_SERVICE"], environment=env,
                    volumes={str(self.state_dir): {"bind": STATE, "mode": "rw"}})
            except docker.errors.APIError as exc:
                self._streams.close()
                self._streams = None
                raise ComponentError(f"docker run {self.image} failed: {exc}") from exc
            self._streams.follow_logs(self._handle, since)
            self._handle.reload()
        self.pid = int(self._handle.attrs["State"]["Pid"] or 0)
        if not self.pid:
            raise ComponentError(f"container {self.container} has no PID: "
                                 f"{self._handle.attrs['State']}")
        self._move_interfaces()
        (self.state_dir / GATE_NAME).touch()

    def _move_interfaces(self) -> None:
        target = f"/proc/{self.pid}/ns/net"
        for seg in self.segments:
            with ns_route(self.lab.ns(self.host)) as hn:
                present = hn.link_lookup(ifname=self.lab.link(self.host, seg).host_iface)
            if not present:  # a restart: the old container took the veth with it
                self.lab.relink(self.host, seg)
        with ns_route(self.lab.ns(self.host)) as hn:
            for seg in self.segments:
                ifname = self.lab.link(self.host, seg).host_iface
                idx = hn.link_lookup(ifname=ifname)[0]
                self._routes |= {(ifname, r.get_attr("RTA_DST") or "0.0.0.0", r["dst_len"],
                                  r.get_attr("RTA_GATEWAY"))
                                 for r in hn.get_routes(family=socket.AF_INET, oif=idx)
                                 if r.get_attr("RTA_GATEWAY")}
                hn.link("set", index=idx, net_ns_pid=self.pid)
        with ns_route(target) as cn:
            lo = cn.link_lookup(ifname="lo")[0]
            cn.link("set", index=lo, state="up")
            for seg in self.segments:
                info = self.lab.link(self.host, seg)
                idx = cn.link_lookup(ifname=info.host_iface)[0]
                if info.address is not None:
                    cn.addr("add", index=idx, address=str(info.address.ip),
                            prefixlen=info.address.network.prefixlen)
                cn.link("set", index=idx, state="up")
            for ifname, dst, dst_len, gateway in sorted(self._routes):
                cn.route("replace", dst=dst, dst_len=dst_len, gateway=gateway,
                         oif=cn.link_lookup(ifname=ifname)[0])

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Ready when the proxy printed its ready line, bound 67/4011, and synced (with a CP).

        Fails at once, with the last log lines, if Docker reports the container died."""
        if self._streams is None:
            raise ComponentError(f"container {self.container} was not started")
        streams = self._streams
        self.ready_info = wait_proxy_ready(lambda: wait_for(
            _Watched(self, streams), *proxy_ready(bool(self.cp_url)), timeout=timeout))

    def logs(self) -> str:
        """The container's stdout and stderr."""
        if self._handle is None:
            return ""
        try:
            return bytes(self._handle.logs(stdout=True, stderr=True)).decode(errors="replace")
        except (docker.errors.DockerException, OSError):  # gone, or the engine with it
            return self._streams.text() if self._streams else ""

    def stop(self) -> None:
        """Save the logs, then remove the container (its namespace and veths go with it)."""
        if self._handle is None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text(self.logs())
        handle, streams = self._handle, self._streams
        self._handle = self._streams = None
        try:
            with engine_answers(f"removing {self.container}"), \
                    contextlib.suppress(docker.errors.NotFound):
                handle.remove(force=True)
        finally:
            if streams is not None:
                streams.close()

    def artifacts(self) -> list[Path]:
        """The saved container log."""
        return [self.log_path] if self.log_path.exists() else []
