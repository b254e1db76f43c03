"""Our Control Plane and Boot Proxy, run on one interface of *this* host, for a few MACs.

``flexlab certify`` and ``flexlab site-check --serve`` run on a real site host (no lab,
no namespaces of ours): they need a Boot Proxy that answers exactly the machines named
on the command line, and a Control Plane those machines register with. This module starts
both as plain child processes bound to the interface's own address, loads the Control
Plane (a cluster, a boot profile with the given kernel and initrd, one machine per MAC,
a proxy record), and waits on real readiness: the Control Plane's ready line and
``/healthz``; the Boot Proxy's ready line, its UDP 67/4011 sockets and its ``/healthz``
reporting the MAC list loaded. Everything it started is stopped by PID on exit, on
failure too. The processes run through the harness's one process runner, with this host
as their namespace (:class:`~harness.components.controlplane_process.ControlPlaneProcess`,
:class:`~harness.components.bootproxy_process.BootProxyProcess`, argv from
:class:`~harness.components.bootproxy.BootProxyConfig`, the readiness conditions of
:mod:`harness.lab.waits`).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bootproxy.dhcp.server import interface_address
from bootproxy.errors import BootProxyError
from controlplane.client import ApiError, ControlPlaneClient
from controlplane.models import Event, MachineOut
from harness.components.bootproxy import BootProxyConfig, prepare_boot_root
from harness.components.bootproxy_process import BootProxyProcess
from harness.components.controlplane_process import ControlPlaneProcess
from harness.errors import ComponentError, FlexlabError
from harness.lab.waits import HttpOk, UdpBound
from harness.macs import normalize_mac
from harness.plan.cmdline import LOCAL_CMDLINE

CLUSTER = "flexlab-local"
PROXY = "flexlab-localboot"
# what the node image's agent reads (harness.plan.cmdline): the screen and the serial port
CMDLINE = LOCAL_CMDLINE.template()


class LocalBootError(FlexlabError):
    """The local Control Plane or Boot Proxy could not be started; the message says why."""


def stand_in_artifact(name: str, size: int = 256 * 1024) -> bytes:
    """Deterministic bytes standing in for a kernel/initrd when only the DHCP/TFTP/HTTP path
    matters (site-check --serve): fetched by the machine, never run."""
    import hashlib

    out = bytearray()
    seed = name.encode()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:size])


@dataclass
class LocalBootConfig:
    """What to serve, where, and with which boot artifacts."""

    iface: str
    macs: list[str]
    kernel: bytes | Path
    initrd: bytes | Path
    workdir: Path | None = None          # state, logs, boot root; a temp dir when None
    cmdline: str = CMDLINE
    cp_port: int = 0                     # 0: any free port (the URL is in the boot data)
    http_port: int = 0                   # the Boot Proxy's HTTP boot port; 0: any free
    reply_delay_ms: int = 0
    extra_proxy_args: tuple[str, ...] = field(default_factory=tuple)


class LocalBoot:
    """A running local Control Plane + Boot Proxy; use as ``with LocalBoot(cfg) as lb:``."""

    def __init__(self, config: LocalBootConfig) -> None:
        self.config = config
        self.macs = [normalize_mac(m) for m in config.macs]
        if not self.macs:
            raise LocalBootError("no MAC to serve: name at least one machine")
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.workdir = config.workdir
        self.address = ""
        self.cp: ControlPlaneProcess | None = None
        self.proxy: BootProxyProcess | None = None
        self.api: ControlPlaneClient | None = None
        self.proxy_ready: dict[str, Any] = {}
        self.admin_token = secrets.token_urlsafe(24)

    # -- facts the callers need ------------------------------------------------
    @property
    def cp_url(self) -> str:
        """The Control Plane's base URL (on the interface's address)."""
        if self.cp is None:
            raise LocalBootError("start() first")
        return self.cp.url

    @property
    def cp_port(self) -> int:
        """The Control Plane's TCP port."""
        return int(self.cp_url.rsplit(":", 1)[1])

    @property
    def http_port(self) -> int:
        """The Boot Proxy's HTTP boot port."""
        return int(self.proxy_ready.get("http_port", self.config.http_port))

    @property
    def proxy_log(self) -> Path:
        """The Boot Proxy's JSON log (its own view: offers sent, drops)."""
        assert self.workdir is not None
        return self.workdir / "bootproxy.log"

    # -- life --------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> LocalBoot:
        """Start and load everything; on any failure stop what was started and raise."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        cfg = self.config
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flexlab-localboot-")
            self.workdir = Path(self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.address = interface_address(cfg.iface)
        except BootProxyError as exc:
            raise LocalBootError(f"--iface {cfg.iface}: {exc}") from exc
        self.cp = ControlPlaneProcess(self.workdir / "controlplane.sqlite3", self.admin_token,
                                      listen=f"{self.address}:{cfg.cp_port}")
        self.cp.start()
        try:
            self.cp.wait_ready(timeout)
        except ComponentError as exc:  # it exited; a WaitTimeout carries its own evidence
            raise LocalBootError(str(exc)) from exc
        self.api = ControlPlaneClient(self.cp.url, self.admin_token)
        token = self._load_control_plane()
        self._start_proxy(token, timeout)

    def _load_control_plane(self) -> str:
        cfg, api = self.config, self.api
        assert api is not None
        try:
            api.create_cluster(CLUSTER, len(self.macs), mode="standalone",
                               environment="test")
            api.upload_artifact("vmlinuz", cfg.kernel)
            api.upload_artifact("initrd.img", cfg.initrd)
            api.create_profile("local", "vmlinuz", "initrd.img", cfg.cmdline)
            for mac in self.macs:
                api.create_machine(mac, CLUSTER, "node-" + mac.replace(":", ""), "local")
            return api.register_proxy(PROXY, [CLUSTER], segments=[cfg.iface])
        except (ApiError, httpx.HTTPError) as exc:
            raise LocalBootError(f"loading the local Control Plane failed: {exc}") from exc

    def _start_proxy(self, token: str, timeout: float) -> None:
        cfg = self.config
        assert self.workdir is not None and self.cp is not None
        pcfg = BootProxyConfig(
            name=PROXY, interfaces=(cfg.iface,),
            boot_root=prepare_boot_root(self.workdir / "bootroot"),
            cache_path=self.workdir / "assignments.json",
            cp_url=self.cp.url, cp_token=token, http_port=cfg.http_port, metrics_port=0,
            reply_delay_ms=cfg.reply_delay_ms, extra_args=cfg.extra_proxy_args)
        args = pcfg.argv()[3:]   # drop "python -m bootproxy": BootProxyProcess adds its own
        # metrics stay on loopback: a site host must not expose them on the LAN
        args[args.index("--metrics-host") + 1] = "127.0.0.1"
        self.proxy = BootProxyProcess(args, self.proxy_log, env=pcfg.env())
        self.proxy.start()
        try:
            self.proxy_ready = self.proxy.wait_ready(timeout, UdpBound(67, 4011))
        except ComponentError as exc:  # it exited; a WaitTimeout carries its own evidence
            raise LocalBootError(str(exc)) from exc
        port = self.proxy_ready.get("metrics_port")
        self.proxy.wait(HttpOk(f"http://127.0.0.1:{port}/healthz", accept=self._serves_all,
                               what=f"load {len(self.macs)} MAC(s) from the Control Plane"),
                        timeout=timeout)

    def _serves_all(self, answer: httpx.Response) -> bool:
        """The proxy's /healthz counts every MAC of ours among its assignments."""
        body = answer.json()
        details = body.get("details", body) if isinstance(body, dict) else {}
        return int(details.get("assignments", 0)) >= len(self.macs)

    def stop(self) -> None:
        """Stop the Boot Proxy, then the Control Plane (by PID); keep the workdir's logs
        unless it was a temp dir of ours."""
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                self.proxy.stop()
        if self.api is not None:
            self.api.close()
            self.api = None
        if self.cp is not None:
            with contextlib.suppress(Exception):
                self.cp.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def machine(self, mac: str) -> MachineOut:
        """The Control Plane's record of one machine (state, reasons, facts)."""
        if self.api is None:
            raise LocalBootError("start() first")
        return self.api.get_machine(normalize_mac(mac))

    def events(self) -> list[Event]:
        """The Control Plane's event log (registration times come from here)."""
        if self.api is None:
            raise LocalBootError("start() first")
        return self.api.events()

    def proxy_events(self) -> list[dict[str, Any]]:
        """The Boot Proxy's JSON log lines so far, parsed (unparseable lines skipped)."""
        out = []
        try:
            text = self.proxy_log.read_text(errors="replace")
        except OSError:
            return []
        for line in text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict):
                    out.append(record)
        return out

    def __enter__(self) -> LocalBoot:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
