"""The whole Boot Proxy as one object: MAC filter + CP sync, ProxyDHCP, conflict watch,
TFTP (and HTTP boot when that subpackage is present), metrics.

`BootProxy.start()` binds every listener and returns the facts printed in the
`{"event": "ready"}` line; `stop()` undoes whatever was started, also after a
start that failed halfway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.registry import Collector

from bootproxy.archreport import ArchReporter
from bootproxy.assignments import AssignmentStore, AssignmentSync, ControlPlaneClient
from bootproxy.cainitrd import ca_initrd
from bootproxy.config import BootProxyConfig, arch_map
from bootproxy.conflicts import ConflictWatch
from bootproxy.cptls import client_context
from bootproxy.dhcp.responder import (
    ARCH_BIOS,
    ARCH_HTTP_X64,
    ARCH_UEFI_BC,
    ARCH_UEFI_X64,
    DHCP_PORT,
    PXE_PORT,
    ResponderConfig,
)
from bootproxy.dhcp.server import DhcpListener, interface_address
from bootproxy.errors import ConfigError, ListenerError
from bootproxy.filemetrics import HttpCollector, TftpCollector
from bootproxy.logs import log_event
from bootproxy.metrics import MetricsServer, Registry
from bootproxy.neighbours import AddressBook

__all__ = ["VERSION", "BootProxy"]

VERSION = "0.1.0"
_LOG = logging.getLogger("bootproxy.app")


class _Listener(Protocol):
    """What the TFTP and HTTP boot servers share: start, stop."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def address(self) -> tuple[str, int]: ...


def responder_config(cfg: BootProxyConfig) -> ResponderConfig:
    """Translate the user-facing settings into the responder's table."""
    return ResponderConfig(
        http_port=cfg.http_port,
        http_host=cfg.http_host,
        tftp_files={
            ARCH_BIOS: cfg.bios_file,
            ARCH_UEFI_X64: cfg.efi_file,
            ARCH_UEFI_BC: cfg.efi_file,
            **arch_map(cfg.arch_files, "arch_files"),
        },
        http_files={
            ARCH_HTTP_X64: cfg.http_file,
            **arch_map(cfg.http_arch_files, "http_arch_files"),
        },
        pxe_equivalents=tuple(cfg.pxe_equivalents),
        reply_delay=cfg.reply_delay_ms / 1000.0,
    )


class BootProxy:
    """Owns every listener and background task of one proxy process."""

    def __init__(self, config: BootProxyConfig, registry: Registry | None = None) -> None:
        self.config = config
        self.registry = registry or Registry()
        self.registry.build_info(version=VERSION)
        self.store = AssignmentStore(self.registry, config.cache_path)
        self.book = AddressBook()
        self.client: ControlPlaneClient | None = None
        self.sync: AssignmentSync | None = None
        self.listeners: list[DhcpListener] = []
        self.watches: list[ConflictWatch] = []
        self.metrics: MetricsServer | None = None
        self.tftp: Any = None
        self.http: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self.arch_reports = ArchReporter(None)
        self._closers: list[Callable[[], Awaitable[None]]] = []

    def health(self) -> tuple[bool, dict[str, object]]:
        """Healthy when listeners are up and a MAC table (CP, cache or file) is loaded."""
        age = self.store.sync_age()
        details: dict[str, object] = {
            "listeners": len(self.listeners),
            "assignments": len(self.store.macs()),
            "assignments_loaded": self.store.loaded,
            "revision": self.store.revision,
            "cp_sync_age_seconds": age,
        }
        if self.sync is not None:
            details.update(self.sync.tls.details())
        return bool(self.listeners) and self.store.loaded, details

    async def start(self) -> dict[str, Any]:
        """Load state, bind every listener, start background tasks; return the ready facts."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> dict[str, Any]:
        cfg = self.config
        if not cfg.interfaces:
            raise ConfigError(
                "no interface to serve: pass --interfaces eth0 (or FLEXLAB_BP_INTERFACES)"
            )
        if cfg.assignments_file is not None:
            self.store.load_file(cfg.assignments_file)
        else:
            self.store.load_cache()
        if cfg.cp_url:
            if not cfg.cp_token:
                raise ConfigError("--cp-url needs a proxy token: set FLEXLAB_BP_CP_TOKEN")
            self.client = ControlPlaneClient(
                cfg.cp_url, cfg.name, cfg.cp_token, verify=client_context(cfg.cp_ca)
            )
            self.sync = AssignmentSync(
                self.store,
                self.client,
                self.registry,
                wait=cfg.longpoll_wait,
                heartbeat_interval=cfg.heartbeat_interval,
                version=VERSION,
                segments=list(cfg.interfaces),
            )
            self._spawn(self.sync.run())
            self._spawn(self.sync.heartbeats())
        elif cfg.assignments_file is None and not self.store.loaded:
            log_event(
                _LOG, "no_assignments", logging.WARNING,
                hint="no --cp-url, no --assignments-file and no cache: every MAC is refused",
            )

        files: dict[str, int] = {}
        if cfg.boot_root is not None:
            files["tftp_port"] = await self._start_tftp()
            http_port = await self._start_http()
            if http_port is not None:
                files["http_port"] = http_port
                if cfg.http_port == 0:
                    cfg.http_port = http_port  # URLs handed out must name the bound port

        rcfg = responder_config(cfg)
        self.arch_reports = ArchReporter(
            self.client.report_boot_arch if self.client is not None else None)
        interfaces = []
        own: set[str] = set()
        for iface in cfg.interfaces:
            addr = cfg.advertise_addr or interface_address(iface)
            own.add(addr)
            entry: dict[str, Any] = {"name": iface, "addr": addr}
            interfaces.append(entry)
            for port, role in ((cfg.dhcp_port, DHCP_PORT), (cfg.pxe_port, PXE_PORT)):
                listener = DhcpListener(
                    iface=iface,
                    port=port,
                    role=role,
                    server_addr=addr,
                    config=rcfg,
                    served=self.store.served,
                    registry=self.registry,
                    learn=self.book.learn,
                    unsupported_arch=self.arch_reports.seen,
                )
                await listener.start()
                self.listeners.append(listener)
                entry["dhcp_port" if role == DHCP_PORT else "pxe_port"] = listener.port
        if cfg.conflict_watch:
            report = self.client.report_conflict if self.client is not None else None
            for iface in cfg.interfaces:
                watch = ConflictWatch(
                    iface=iface,
                    own_addresses=own,
                    served=self.store.served,
                    registry=self.registry,
                    report=report,
                )
                try:
                    await watch.start()
                except ListenerError as exc:
                    log_event(_LOG, "conflict_watch_off", logging.WARNING, error=str(exc))
                    continue
                self.watches.append(watch)

        ready: dict[str, Any] = {
            "event": "ready",
            "name": cfg.name,
            "version": VERSION,
            "interfaces": interfaces,
            "assignments": len(self.store.macs()),
            "conflict_watch": bool(self.watches),
            **files,
        }
        self.metrics = MetricsServer(
            self.registry, self.health, cfg.metrics_host, cfg.metrics_port
        )
        await self.metrics.start()
        ready["metrics_port"] = self.metrics.port
        log_event(_LOG, "ready", **{k: v for k, v in ready.items() if k != "event"})
        return ready

    async def _start_tftp(self) -> int:
        from bootproxy.tftp import TftpConfig, TftpServer

        assert self.config.boot_root is not None
        server = TftpServer(
            TftpConfig(root=self.config.boot_root, port=self.config.tftp_port),
            allow=self._file_filter(),
        )
        port = await self._listen(server, TftpCollector(server.counters),
                                  f"TFTP on port {self.config.tftp_port}",
                                  "is another TFTP server running?")
        self.tftp = server
        return port

    async def _listen(self, server: _Listener, counters: Collector, what: str,
                      hint: str) -> int:
        """Start one file server, queue its stop and publish its counters; returns the bound
        port. A busy port is a ListenerError with a hint (the process exits with it)."""
        try:
            await server.start()
        except OSError as exc:
            raise ListenerError(f"cannot listen for {what}: {exc.strerror}; {hint}") from exc
        self._closers.append(server.stop)
        self.registry.register(counters)
        return int(server.address[1])

    def _file_filter(self) -> Callable[[str], bool]:
        """allow(ip) for boot files: the MAC filter through the IP->MAC book, or open."""
        if self.config.file_filter == "off":
            return lambda _ip: True
        return self.book.ip_filter(self.store.served)

    async def _start_http(self) -> int | None:
        """Start the HTTP boot server (scripts from the CP, files from the boot root)."""
        try:
            from bootproxy.httpboot import ControlPlaneSource, HttpBootConfig, HttpBootServer
            from bootproxy.httpboot.__main__ import NoControlPlane
        except ImportError:
            log_event(_LOG, "http_boot_unavailable", logging.WARNING,
                      hint="bootproxy.httpboot is not installed; serving DHCP and TFTP only")
            return None
        cfg = self.config
        assert cfg.boot_root is not None
        source: Any
        if cfg.cp_url and cfg.cp_token:
            source = ControlPlaneSource(cfg.cp_url, cfg.cp_token,
                                        verify=client_context(cfg.cp_ca))
            self._closers.append(source.aclose)
        else:
            source = NoControlPlane()
        server = HttpBootServer(
            HttpBootConfig(
                root=cfg.boot_root,
                cache_dir=cfg.cache_path.parent / "artifacts",
                port=cfg.http_port,
                ca_initrd=self._ca_initrd(),
            ),
            source,
            allow_mac=self.store.served,
            allow_ip=self._file_filter(),
        )
        port = await self._listen(server, HttpCollector(server.counters),
                                  f"HTTP boot on port {cfg.http_port}",
                                  "pick another --http-port")
        self.http = server
        return port

    def _ca_initrd(self) -> Path | None:
        """Write `--cp-ca` as the nodes' CA initrd (bootproxy.cainitrd); None without it.

        The nodes this proxy boots then trust exactly the CA it trusts itself.
        """
        if self.config.cp_ca is None:
            return None
        try:
            pem = self.config.cp_ca.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--cp-ca {self.config.cp_ca}: {exc.strerror}") from exc
        path = self.config.cache_path.parent / "trust" / "cp-ca.cpio"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ca_initrd(pem))
        return path

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOG.exception("background task failed", extra={"fields": {"event": "task_failed"}})

        self._tasks.append(asyncio.get_running_loop().create_task(guarded()))

    async def stop(self) -> None:
        """Close listeners, cancel tasks, stop TFTP/HTTP and the CP client; safe to call twice."""
        for listener in self.listeners:
            listener.close()
        self.listeners.clear()
        for watch in self.watches:
            watch.close()
        self.watches.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        while self._closers:
            closer = self._closers.pop()
            with contextlib.suppress(Exception):
                await closer()
        if self.metrics is not None:
            await self.metrics.close()
            self.metrics = None
        if self.client is not None:
            await self.client.close()
            self.client = None
