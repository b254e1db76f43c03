"""The Boot Proxy under test, as a lab component: our own (process or container) or any image.

Process mode runs ``python -m bootproxy`` in the proxy host's namespace.
Container mode (``image=``) runs the image with ``--network none`` and moves
a veth per segment into the container's namespace with pyroute2, so the
container sees only the lab (see harness/components/container.py).
Readiness: the proxy's own ``{"event": "ready"}`` line, then its sockets on
UDP 67 and 4011 really bound.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.components.base import Component
from harness.errors import ComponentError, DependencyError, WaitTimeout
from harness.exitcodes import FAIL
from harness.lab.lab import Lab
from harness.lab.waits import Condition, LogLine, ReadyLine, UdpBound

IPXE_DIR = Path("/usr/lib/ipxe")
BOOT_FILES = ("undionly.kpxe", "ipxe.efi", "snponly.efi")
HTTP_PORT = 8080
# the Boot Proxy's own default (docs/BOOTPROXY.md); 9100 is node_exporter's, which a lab
# host may well run
METRICS_PORT = 9467
# a proxy with a Control Plane serves once it knows what to serve: a MAC list (fresh, or
# its cache in an outage), or a logged failure to get one (it then serves its cache, or
# nothing: a site whose WAN blocks the Control Plane's port must still show that)
SYNCED = (r'"event": ?"(assignments_(updated|cache_loaded)|cp_unreachable|cp_tls_failed'
          r'|cp_bad_answer|cp_garbage)"')


class ProxyNotReady(ComponentError):
    """The Boot Proxy under test never became ready (it died, or never bound or synced):
    the system under test failed — a verdict (exit 1) — not the host (exit 3)."""

    exit_status = FAIL


def wait_proxy_ready(wait: Callable[[], list[Any]]) -> dict[str, Any]:
    """Run a proxy's readiness ``wait`` (it returns the met conditions' results, the ready
    line first); its failure becomes :class:`ProxyNotReady` with the same evidence."""
    try:
        return dict(wait()[0])
    except (WaitTimeout, ComponentError) as exc:
        raise ProxyNotReady(str(exc)) from exc


def proxy_ready(with_control_plane: bool) -> list[Condition]:
    """What makes a Boot Proxy ready wherever it runs (process or container): its
    ``{"event": "ready"}`` line (the first result), its own sockets on UDP 67 and 4011,
    and with a Control Plane a decision on what to serve (:data:`SYNCED`)."""
    return [ReadyLine(), UdpBound(67, 4011), *([LogLine(SYNCED)] if with_control_plane else [])]


def prepare_boot_root(directory: Path) -> Path:
    """Copy Debian's iPXE binaries into ``directory`` (copies, not symlinks: the TFTP
    server rightly refuses symlinks that leave its root)."""
    missing = [f for f in BOOT_FILES if not (IPXE_DIR / f).exists()]
    if missing:
        raise DependencyError(f"iPXE binaries missing ({', '.join(missing)}): apt-get install ipxe")
    directory.mkdir(parents=True, exist_ok=True)
    for name in BOOT_FILES:
        if not (directory / name).exists():
            shutil.copyfile(IPXE_DIR / name, directory / name)
    return directory


@dataclass(frozen=True)
class BootProxyConfig:
    """What the harness tells a Boot Proxy; rendered to argv by :meth:`argv`."""

    name: str
    interfaces: tuple[str, ...]
    boot_root: Path
    cache_path: Path
    cp_url: str | None = None
    cp_token: str | None = None
    cp_ca: Path | None = None          # verify the Control Plane against this CA only
    assignments_file: Path | None = None
    http_port: int = HTTP_PORT
    metrics_port: int = METRICS_PORT
    reply_delay_ms: int = 0
    pxe_equivalents: tuple[str, ...] = ("HW-Client",)
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def argv(self, python: str = sys.executable) -> list[str]:
        """Command line of our proxy. Its Control Plane token is not on it (any user on
        the host can read a command line): see :meth:`env`."""
        args = [python, "-m", "bootproxy", "--name", self.name,
                "--interfaces", ",".join(self.interfaces),
                "--boot-root", str(self.boot_root), "--cache-path", str(self.cache_path),
                "--http-port", str(self.http_port),
                "--metrics-host", "0.0.0.0", "--metrics-port", str(self.metrics_port),
                "--reply-delay-ms", str(self.reply_delay_ms)]
        if self.pxe_equivalents:
            args += ["--pxe-equivalents", ",".join(self.pxe_equivalents)]
        if self.cp_url:
            args += ["--cp-url", self.cp_url]
        if self.cp_ca:
            args += ["--cp-ca", str(self.cp_ca)]
        if self.assignments_file:
            args += ["--assignments-file", str(self.assignments_file)]
        return args + list(self.extra_args)

    def env(self) -> dict[str, str]:
        """What the proxy's environment adds: its token as ``FLEXLAB_BP_CP_TOKEN``, the
        variable the proxy reads (only the process's owner can read its environment)."""
        return {"FLEXLAB_BP_CP_TOKEN": self.cp_token} if self.cp_token else {}


class BootProxy(Component):
    """Our reference Boot Proxy as a plain process in a lab host."""

    def __init__(self, lab: Lab, host: str, segments: list[str], *, cp_url: str | None = None,
                 cp_token: str | None = None, assignments_file: Path | None = None,
                 name: str | None = None, reply_delay_ms: int = 0,
                 cp_ca: Path | None = None) -> None:
        self.lab = lab
        self.host = host
        self.segments = segments
        self.name = name or host
        state = lab.temp_dir / f"bootproxy-{self.name}"
        self.config = BootProxyConfig(
            name=self.name,
            interfaces=tuple(lab.link(host, s).host_iface for s in segments),
            boot_root=prepare_boot_root(lab.temp_dir / "bootroot"),
            cache_path=state / "assignments.json",
            cp_url=cp_url,
            cp_token=cp_token,
            cp_ca=cp_ca,
            assignments_file=assignments_file,
            reply_delay_ms=reply_delay_ms,
        )
        self.ready_info: dict[str, Any] = {}

    def address(self, segment: str) -> str:
        """The proxy's address on ``segment`` (what clients see in option 54)."""
        return self.lab.address(self.host, segment)

    def start(self) -> None:
        """Launch the proxy in its host's namespace."""
        self.config.cache_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = self.lab.start_process(f"bootproxy-{self.name}", self.config.argv(),
                                              self.host, env=self.config.env())

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Ready when it logged its ready event and holds UDP 67 and 4011."""
        self.ready_info = wait_proxy_ready(lambda: self.wait_for(
            *proxy_ready(bool(self.config.cp_url)), timeout=timeout))
