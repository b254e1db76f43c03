"""The Boot Proxy as a container: any image that speaks our CLI/env contract is testable.

The container starts with ``--network none`` and waits at a gate; the harness
then moves the lab-built interface of the proxy's host (``eth0``, ``eth1``, …)
from that host's namespace into the container's, re-adds its lab address,
and opens the gate. The container sees only the lab; it carries the Docker
label ``io.flexlab.lab=<id>`` so ``flexlab clean`` finds it after a crash.
Capabilities are dropped to NET_RAW and NET_BIND_SERVICE.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

from pyroute2 import NetNS

from harness.components.base import Component
from harness.components.bootproxy import METRICS_PORT, proxy_ready
from harness.errors import ComponentError, DependencyError
from harness.lab import names
from harness.lab.lab import Lab
from harness.lab.waits import wait_for

DEFAULT_IMAGE = "flexlab/bootproxy:latest"
GATE = "/tmp/flexlab-go"
# the shell gate keeps the proxy from binding before its interfaces exist
ENTRY = (f'while [ ! -e {GATE} ]; do sleep 0.05; done; exec python3 -m bootproxy "$@"')


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)


class _Watched:
    """A container seen as the process the readiness conditions watch: its init PID,
    Docker's state and exit code, and ``docker logs`` as its output."""

    def __init__(self, owner: BootProxyContainer) -> None:
        self.owner = owner
        self.name = f"Boot Proxy container {owner.container}"

    @property
    def pid(self) -> int:
        return self.owner.pid

    def _state(self, field: str) -> str:
        return _docker("inspect", "-f", f"{{{{.State.{field}}}}}",
                       self.owner.container).stdout.strip()

    def running(self) -> bool:
        return self._state("Status") not in ("exited", "dead")

    def returncode(self) -> int | None:
        code = self._state("ExitCode")
        return None if self.running() or not code.isdigit() else int(code)

    def output(self) -> str:
        return self.owner.logs()

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.owner.logs().splitlines()[-lines:])


class BootProxyContainer(Component):
    """A Boot Proxy image run in a container attached to the lab."""

    def __init__(self, lab: Lab, host: str, segments: list[str], *, image: str = DEFAULT_IMAGE,
                 cp_url: str | None = None, cp_token: str | None = None,
                 name: str | None = None, cp_ca: Path | None = None) -> None:
        """``cp_ca``: the CA the proxy verifies the Control Plane against; copied into the
        state directory the container mounts."""
        if shutil.which("docker") is None:
            raise DependencyError("docker not found: apt-get install docker.io (make setup)")
        self.lab = lab
        self.host = host
        self.segments = segments
        self.image = image
        self.cp_url = cp_url
        self.cp_token = cp_token
        self.cp_ca = cp_ca
        self.name = name or host
        self.container = f"{lab.id}-{self.name}"
        self.log_path = lab.reports_dir / "logs" / f"bootproxy-{self.name}.log"
        self.pid = 0
        self.state_dir = lab.temp_dir / f"bootproxy-{self.name}"
        self.ready_info: dict[str, Any] = {}
        self._started = False
        # routes through the host's lab interfaces (e.g. back to a relayed segment): a moved
        # interface loses them, so they are re-added in the container, on every restart too
        self._routes: set[tuple[str, str, int, str]] = set()

    def _args(self) -> list[str]:
        ifaces = ",".join(self.lab.link(self.host, s).host_iface for s in self.segments)
        args = ["--name", self.name, "--interfaces", ifaces, "--cache-path",
                "/var/lib/flexlab/assignments.json", "--http-port", "8080",
                "--metrics-host", "0.0.0.0", "--metrics-port", str(METRICS_PORT),
                "--pxe-equivalents", "HW-Client"]
        if self.cp_url:
            args += ["--cp-url", self.cp_url]
        if self.cp_ca:
            args += ["--cp-ca", "/var/lib/flexlab/cp-ca.pem"]
        return args

    def start(self) -> None:
        """Run the container, move the lab interfaces in, open the gate."""
        if _docker("image", "inspect", self.image).returncode != 0:
            raise DependencyError(f"image {self.image} is not built here: run `make images`")
        env = ["-e", f"FLEXLAB_BP_CP_TOKEN={self.cp_token}"] if self.cp_token else []
        # the assignment cache lives outside the container: nothing is lost on a restart
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.cp_ca:
            shutil.copyfile(self.cp_ca, self.state_dir / "cp-ca.pem")
        run = _docker("run", "-d", "--name", self.container, "--network", "none",
                      "--label", f"{names.DOCKER_LABEL}={self.lab.id}",
                      "--cap-drop", "ALL", "--cap-add", "NET_RAW",
                      "--cap-add", "NET_BIND_SERVICE", *env,
                      "-v", f"{self.state_dir}:/var/lib/flexlab",
                      "--entrypoint", "/bin/sh", self.image, "-c", ENTRY, "sh", *self._args())
        if run.returncode != 0:
            raise ComponentError(f"docker run {self.image} failed: {run.stderr.strip()}")
        self._started = True
        inspect = _docker("inspect", "-f", "{{.State.Pid}}", self.container)
        self.pid = int(inspect.stdout.strip() or 0)
        if not self.pid:
            raise ComponentError(f"container {self.container} has no PID: {inspect.stderr}")
        self._move_interfaces()
        gate = _docker("exec", self.container, "touch", GATE)
        if gate.returncode != 0:
            raise ComponentError(f"could not open the start gate: {gate.stderr}")

    def _move_interfaces(self) -> None:
        target = f"/proc/{self.pid}/ns/net"
        for seg in self.segments:
            with NetNS(self.lab.ns(self.host)) as hn:
                present = hn.link_lookup(ifname=self.lab.link(self.host, seg).host_iface)
            if not present:  # a restart: the old container took the veth with it
                self.lab.relink(self.host, seg)
        with NetNS(self.lab.ns(self.host)) as hn:
            for seg in self.segments:
                ifname = self.lab.link(self.host, seg).host_iface
                idx = hn.link_lookup(ifname=ifname)[0]
                self._routes |= {(ifname, r.get_attr("RTA_DST") or "0.0.0.0", r["dst_len"],
                                  r.get_attr("RTA_GATEWAY"))
                                 for r in hn.get_routes(family=socket.AF_INET, oif=idx)
                                 if r.get_attr("RTA_GATEWAY")}
                hn.link("set", index=idx, net_ns_pid=self.pid)
        with NetNS(target) as cn:
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
        """Ready when the proxy printed its ready line, bound 67/4011, and synced (with a CP)."""
        self.ready_info = wait_for(_Watched(self), *proxy_ready(bool(self.cp_url)),
                                   timeout=timeout)[0]

    def logs(self) -> str:
        """The container's stdout and stderr."""
        if not self._started:
            return ""
        out = _docker("logs", self.container)
        return out.stdout + out.stderr

    def stop(self) -> None:
        """Save the logs, then remove the container (its namespace and veths go with it)."""
        if not self._started:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.write_text(self.logs())
        _docker("rm", "-f", self.container)
        self._started = False

    def artifacts(self) -> list[Path]:
        """The saved container log."""
        return [self.log_path] if self.log_path.exists() else []
