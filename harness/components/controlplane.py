"""The Control Plane mock as a lab component, and the harness's client to it.

The service runs in its own lab host (multi-homed: one address on every
segment, so proxies and machines reach it without routing). The harness
talks to it through a :class:`NamespaceWorker`, so the host's namespace is
never joined to the lab. Stopping and starting it again keeps its SQLite
store — that is how scenarios model an outage.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controlplane.client import ControlPlaneClient, verify_context
from harness.components.base import Component
from harness.components.controlplane_process import controlplane_argv, controlplane_env
from harness.lab.lab import Lab
from harness.lab.nsthread import NamespaceWorker
from harness.lab.waits import HttpOk, ReadyLine, TcpListening

CP_PORT = 8000


class NamespacedClient:
    """A :class:`ControlPlaneClient` whose every call runs inside the lab namespace."""

    def __init__(self, worker: NamespaceWorker, client: ControlPlaneClient) -> None:
        self._worker = worker
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._worker.call(target, *args, **kwargs)
            if isinstance(result, ControlPlaneClient):  # with_token(): keep it in the lab
                return NamespacedClient(self._worker, result)
            return result

        return call


class ControlPlane(Component):
    """``python -m controlplane`` in lab host ``host``, listening on every segment."""

    def __init__(self, lab: Lab, host: str = "cp", *, tls: bool = False,
                 tls_fault: str | None = None, advertised: str | None = None,
                 extra_args: tuple[str, ...] = (), port: int = CP_PORT,
                 name: str = "controlplane") -> None:
        """``tls_fault`` (wrong-ca, wrong-name, expired) serves a certificate clients must
        refuse — the harness itself, as the operator, then skips verification; ``advertised``
        is the address clients use when it is not one of the host's own (a NAT or tunnel
        address), put in the certificate and in :meth:`url`; ``extra_args`` are more
        ``python -m controlplane`` flags (e.g. the RFC 2136 ``--dns-*`` ones); ``port``: a
        cloud Control Plane listens on 443, the port a site's WAN lets out; ``name`` (its
        log, store and CA directory) tells two Control Planes of one lab apart."""
        self.lab = lab
        self.host = host
        self.name = name
        self.admin_token = secrets.token_urlsafe(24)
        self.db = lab.temp_dir / f"{name}.sqlite3"
        tls_name = "cp-tls" if name == "controlplane" else f"{name}-tls"
        self.tls_dir = lab.temp_dir / tls_name if tls or tls_fault else None
        self.tls_fault = tls_fault
        self.advertised = advertised
        self.extra_args = tuple(extra_args)
        self.port = port
        self._worker: NamespaceWorker | None = None
        self.api: Any = None
        self.ready_info: dict[str, Any] = {}

    def url(self, segment: str) -> str:
        """Base URL of the service as seen from ``segment`` (or its advertised address)."""
        scheme = "https" if self.tls_dir else "http"
        host = self.advertised or self.lab.address(self.host, segment)
        return f"{scheme}://{host}:{self.port}"

    @property
    def ca_cert(self) -> Path | None:
        """The lab CA clients verify the service against (None without TLS)."""
        return self.tls_dir / "ca.pem" if self.tls_dir is not None else None

    def argv(self) -> list[str]:
        """The service's command line."""
        args = ["--lab", self.lab.id]
        if self.tls_dir is not None:
            args += ["--tls-dir", str(self.tls_dir)]
            for (host, _seg), info in self.lab.links.items():
                if host == self.host and info.address is not None:
                    args += ["--tls-name", str(info.address.ip)]
            if self.advertised:
                args += ["--tls-name", self.advertised]
            if self.tls_fault:
                args += ["--tls-fault", self.tls_fault]
        args += list(self.extra_args)
        return controlplane_argv(f"0.0.0.0:{self.port}", self.db, args)

    def start(self) -> None:
        """Start (or restart after stop(): the store is kept)."""
        self.process = self.lab.start_process(self.name, self.argv(), self.host,
                                              env=controlplane_env(self.admin_token))

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Ready when it printed its ready line, listens, and answers /healthz from the lab."""
        if self._worker is None:
            self._worker = NamespaceWorker(self.lab.ns(self.host))
        # the harness's own client goes to the host's own address (it sits beside it)
        seg = next(seg for (h, seg) in self.lab.links if h == self.host)
        scheme = "https" if self.tls_dir else "http"
        url = f"{scheme}://{self.lab.address(self.host, seg)}:{self.port}"
        verify: bool | str = True
        if self.tls_dir is not None:
            # a deliberately bad certificate is for the clients under test to refuse
            verify = False if self.tls_fault else str(self.tls_dir / "ca.pem")
        self.ready_info = self.wait_for(ReadyLine(), TcpListening(self.port),
                                        timeout=timeout)[0]
        # the CA exists once the service is up (it makes the lab CA at start)
        self.wait_for(HttpOk(f"{url}/healthz", verify=verify_context(verify),
                             call=self._worker.call), timeout=timeout)
        client = self._worker.call(ControlPlaneClient, url, self.admin_token, verify=verify)
        self.api = NamespacedClient(self._worker, client)

    def stop(self) -> None:
        """Stop the service (the store stays for a restart)."""
        super().stop()

    def close(self) -> None:
        """Stop and release the namespace worker."""
        self.stop()
        if self._worker is not None:
            self._worker.close()
            self._worker = None
