"""One end of the WAN's WireGuard tunnel in a lab namespace: kernel link or wireguard-go.

Keys are made per lab by ``wg genkey``/``wg pubkey`` and written only to the lab's temp
dir (0600). With the kernel module the interface is a plain link that vanishes with the
namespace; without it wireguard-go runs in the foreground as a lab process, so its PID
is in the registry and ``flexlab clean`` stops it.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ComponentError, DependencyError, LabError
from harness.lab.lab import Lab
from harness.lab.process import LabProcess
from harness.wait import wait_until
from harness.wan.config import WanAddressing, WanRouterConfig

UAPI_DIR = Path("/var/run/wireguard")  # wireguard-go's control sockets, one per interface


@dataclass(frozen=True)
class KeyPair:
    """A WireGuard key pair (base64, as ``wg`` prints them)."""

    private: str
    public: str


def _wg(args: list[str], stdin: str | None = None) -> str:
    try:
        res = subprocess.run(["wg", *args], input=stdin, capture_output=True, text=True,
                             timeout=10, check=False)
    except FileNotFoundError:
        raise DependencyError("wg not found: apt-get install wireguard-tools") from None
    if res.returncode != 0:
        raise ComponentError(f"wg {args[0]} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def generate_keypair() -> KeyPair:
    """A fresh key pair from ``wg genkey`` (no namespace needed: pure computation)."""
    private = _wg(["genkey"])
    return KeyPair(private, _wg(["pubkey"], stdin=private + "\n"))


class TunnelEnd:
    """One end (``side``) of the tunnel in lab host ``host``'s namespace."""

    def __init__(self, lab: Lab, host: str, side: str, config: WanRouterConfig,
                 addressing: WanAddressing, backend: str, component: str) -> None:
        self.lab = lab
        self.host = host
        self.side = side
        self.config = config
        self.addressing = addressing
        self.backend = backend
        self.iface = addressing.wg_iface(side)
        self.process: LabProcess | None = None
        self.created = False
        self._name = f"{component}-wg-{side}"

    def create(self, timeout: float = 10.0) -> None:
        """Make the interface exist; with wireguard-go, wait until its control socket
        answers ``wg show`` (a real probe; the process exiting fails at once)."""
        argv = self.config.wg_create_argv(self.side, self.addressing, self.backend)
        if self.backend == "kernel":
            self.lab.run(self.host, argv)
            self.created = True
            return
        # verbose: handshakes and their failures go to the component log (evidence)
        proc = self.lab.start_process(self._name, ["env", "LOG_LEVEL=verbose", *argv],
                                      self.host)
        self.process = proc
        self.created = True

        def answers() -> bool:
            if not proc.running():
                raise ComponentError(f"{self._name} exited ({proc.returncode()}) before its "
                                     f"control socket answered:\n{proc.log_tail()}")
            if not (UAPI_DIR / f"{self.iface}.sock").exists():
                return False
            try:
                self.lab.run(self.host, ["wg", "show", self.iface])
            except LabError:  # the socket exists but does not answer yet
                return False
            return True

        wait_until(answers, timeout=timeout, what=f"{self._name} to answer wg show",
                   evidence=proc.log_tail)

    def configure(self, keys: KeyPair, peer_public: str) -> None:
        """Write this end's config (0600, lab temp dir), load it, address and raise it."""
        conf = self.lab.temp_dir / f"{self._name}.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.config.wg_config(self.side, self.addressing, keys.private,
                                           peer_public))
        for argv in self.config.wg_setup_commands(self.side, self.addressing, conf):
            self.lab.run(self.host, argv)

    def latest_handshake(self) -> int:
        """Unix time of the last completed handshake with the peer (0: never)."""
        out = self.lab.run(self.host, ["wg", "show", self.iface, "latest-handshakes"])
        stamps = [int(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2]
        return max(stamps, default=0)

    def set_up(self, up: bool) -> None:
        """Raise or drop the tunnel interface (its routes go and come with it)."""
        self.lab.run(self.host, ["ip", "link", "set", self.iface, "up" if up else "down"])

    def remove(self) -> None:
        """Stop wireguard-go (it removes its interface and socket) or delete the link."""
        if self.process is not None:
            self.process.stop()
        elif self.created:
            self.lab.run(self.host, ["ip", "link", "del", self.iface])
        self.created = False

    def log_path(self) -> Path | None:
        """wireguard-go's log, if this end runs it."""
        return self.process.log_path if self.process is not None else None
