"""The WAN router as a lab component: NAT, egress firewall, optional WireGuard, impairments.

The router and the cloud are lab hosts declared by :meth:`WanRouterConfig.topology_parts`
(so their namespaces, links and pcaps are the lab's, named and cleaned by its id). This
component configures them: the router's sysctls and nftables table, the tunnel ends,
loss and latency on the WAN link; it cuts and restores the link, and reads back the
flows that crossed. ``stop`` removes what ``start`` made; a failed ``start`` undoes
itself.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from pathlib import Path

from harness.components.base import Component
from harness.errors import ComponentError, LabError
from harness.lab import capabilities as cap
from harness.lab.lab import Lab
from harness.lab.nsthread import NamespaceWorker
from harness.wait import wait_until
from harness.wan.config import (
    CLOUD,
    ROUTER,
    TABLE,
    WanAddressing,
    WanConfigError,
    WanRouterConfig,
)
from harness.wan.flows import ObservedFlow, parse_counters, parse_flows
from harness.wan.probes import icmp_echo
from harness.wan.wireguard import TunnelEnd, generate_keypair


def requirements(config: WanRouterConfig, caps: dict[str, cap.Capability]) -> str | None:
    """Check that the host can build ``config``; return the WireGuard backend to use
    (``kernel``/``userspace``, None when not private). Raises CapabilityError with the
    how-to for the first missing piece, so a bad request fails before anything is made."""
    cap.require(cap.NFT, caps)
    if config.latency_ms:
        cap.require(cap.NETEM, caps)
    return cap.wireguard_backend(caps) if config.private else None


def addressing_for(lab: Lab, config: WanRouterConfig) -> WanAddressing:
    """Resolve the router's interfaces and addresses in a built lab."""
    try:
        site = lab.link(config.router, config.site_segment)
        wan = lab.link(config.router, config.wan_segment)
        cloud = lab.link(config.cloud, config.wan_segment)
    except LabError as exc:
        raise WanConfigError(f"wan: the lab lacks the router's links ({exc}); add "
                             "WanRouterConfig.topology_parts() to its topology") from None
    if site.address is None or wan.address is None or cloud.address is None:
        raise WanConfigError("wan: router and cloud links need static addresses")
    tunnel_router, tunnel_cloud = config.tunnel_addresses()
    for seg, net in lab.subnets.items():
        if config.private and net.overlaps(tunnel_router.network):
            raise WanConfigError(f"wan: tunnel subnet {tunnel_router.network} overlaps "
                                 f"segment {seg!r} ({net}); choose another tunnel_subnet")
    return WanAddressing(
        lab_id=lab.id, site_iface=site.host_iface, wan_iface=wan.host_iface,
        router_site=site.address, router_wan=wan.address, cloud_wan=cloud.address,
        site_subnet=ipaddress.IPv4Network(site.address.network),
        tunnel_router=tunnel_router, tunnel_cloud=tunnel_cloud)


class WanRouter(Component):
    """The site's WAN router (see :class:`WanRouterConfig`); a context manager that
    starts, waits for a real path to the cloud, and always stops."""

    def __init__(self, lab: Lab, config: WanRouterConfig, *,
                 capabilities: dict[str, cap.Capability] | None = None) -> None:
        config.validate()
        self.lab = lab
        self.config = config
        self.name = f"wan-{config.router}"
        self._caps = capabilities
        self.backend: str | None = None  # the WireGuard implementation used, when private
        self.addressing: WanAddressing | None = None
        self.tunnel: dict[str, TunnelEnd] = {}
        self.events_path = lab.reports_dir / "logs" / f"{self.name}.log"
        self.snapshot_dir = lab.reports_dir / "wan"
        self._table_loaded = False
        self._impaired = False
        self._link_up = True
        self._configured_impairment_pending = False

    # -- life -------------------------------------------------------------------------
    def start(self) -> None:
        """Check the host, then configure router, tunnel and impairments; undo on failure."""
        caps = self._caps if self._caps is not None else cap.detect()
        self.backend = requirements(self.config, caps)
        self.addressing = addressing_for(self.lab, self.config)
        self._configured_impairment_pending = True
        self._event("start", backend=self.backend or "none",
                    ports=",".join(map(str, self.config.egress_ports)))
        try:
            self._configure_router()
            if self.config.private:
                self._start_tunnel()
        except BaseException:
            try:
                self.stop()
            except ComponentError as exc:
                self._event("undo-failed", error=str(exc))
            raise

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when the router reaches the cloud over the WAN link (ICMP echo from the
        router's namespace) and, if private, a WireGuard handshake has completed and an
        echo crosses the tunnel. The configured loss and latency are applied after the
        first such proof: the path is proven on a clean link, so a heavy loss setting
        cannot turn readiness into a lottery."""
        a = self._resolved()
        targets = [str(a.cloud_wan.ip)]
        if self.config.private:
            targets.append(str(a.tunnel_cloud.ip))
        with NamespaceWorker(self.lab.ns(self.config.router)) as worker:
            for target in targets:

                def answered(target: str = target) -> int:
                    return worker.call(icmp_echo, target, 1, 0.0, 0.3).received

                wait_until(answered, timeout=timeout,
                           what=f"{self.name}: echo from the router to {target}",
                           evidence=self._evidence)
        if self.config.private:
            for end in self.tunnel.values():
                wait_until(end.latest_handshake, timeout=timeout,
                           what=f"{self.name}: WireGuard handshake on {end.iface}",
                           evidence=self._evidence)
        self._event("ready")
        if self._configured_impairment_pending:
            self._configured_impairment_pending = False
            if self.config.loss_pct or self.config.latency_ms:
                self.set_impairment(self.config.loss_pct, self.config.latency_ms)

    def stop(self) -> None:
        """Save the flows and counters as evidence, then remove table, tunnel and
        impairments; raise ComponentError listing anything that could not be undone."""
        errors: list[str] = []
        if self._table_loaded:
            try:
                self._snapshot()
            except Exception as exc:  # evidence is best effort; the clean-up must run
                errors.append(f"snapshot: {exc}")
        steps: list[tuple[str, Callable[[], object]]] = []
        if self._impaired:
            steps.append(("impairment", lambda: self._impair(0.0, 0)))
        steps += [(f"tunnel {side}", end.remove) for side, end in self.tunnel.items()]
        if self._table_loaded:
            steps.append(("nft table", lambda: self.lab.run(
                self.config.router, ["nft", "delete", "table", "inet", TABLE])))
        if not self._link_up:
            steps.append(("WAN link", lambda: self.lab.set_link(
                self.config.router, self.config.wan_segment, True)))
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # keep going: the rest must still be undone
                errors.append(f"{what}: {exc}")
        self.tunnel = {}
        self._table_loaded = self._impaired = False
        self._link_up = True
        self._event("stopped", errors=len(errors))
        if errors:
            raise ComponentError(f"{self.name} stop left problems:\n  " + "\n  ".join(errors))

    def logs(self) -> str:
        """The router's event log, then each wireguard-go log."""
        parts = [p.read_text(errors="replace") for p in self._logs() if p.exists()]
        return "\n".join(parts)

    def artifacts(self) -> list[Path]:
        """Event log, wireguard-go logs, and the final flows/ruleset snapshot."""
        snaps = sorted(self.snapshot_dir.glob(f"{self.name}-*")) if self.snapshot_dir.is_dir() \
            else []
        return [p for p in [*self._logs(), *snaps] if p.exists()]

    # -- what the site needs ------------------------------------------------------------
    def route_site_host(self, host: str) -> None:
        """Give site host ``host`` routes to the cloud (and the tunnel) via the router."""
        for destination, gateway in self.config.site_routes(self._resolved()):
            self.lab.add_route(host, destination, gateway)

    @property
    def control_plane_address(self) -> str:
        """Where site hosts reach a Control Plane living in the cloud host."""
        return self.config.control_plane_address(self._resolved())

    # -- impairments --------------------------------------------------------------------
    def down(self) -> None:
        """Cut the WAN link at the switch (the router sees its carrier go). With the
        linkdown sysctl the router then has no route and answers site connects with
        ICMP unreachable: they fail at once. The tunnel interface goes down too, as a
        router withdraws a tunnel whose underlay is gone."""
        self.lab.set_link(self.config.router, self.config.wan_segment, False)
        self._link_up = False
        if ROUTER in self.tunnel:
            self.tunnel[ROUTER].set_up(False)
        self._event("down")

    def up(self, timeout: float = 15.0) -> None:
        """Restore the WAN link (and tunnel); return once the path is proven again."""
        self.lab.set_link(self.config.router, self.config.wan_segment, True)
        self._link_up = True
        if ROUTER in self.tunnel:
            self.tunnel[ROUTER].set_up(True)
        self._event("up")
        self.wait_ready(timeout)

    def set_up(self, up: bool) -> None:
        """:meth:`up` or :meth:`down`, as a ``wan_up``/``wan_down`` step says."""
        if up:
            self.up()
        else:
            self.down()

    def set_impairment(self, loss_pct: float = 0.0, latency_ms: int = 0) -> None:
        """Drop ``loss_pct`` % of frames (nftables ``numgen random`` in the lab's switch)
        and delay them ``latency_ms`` in each direction of the WAN link. Latency needs
        netem: without it CapabilityError says how to get it and nothing is changed."""
        WanRouterConfig(loss_pct=loss_pct, latency_ms=latency_ms).validate()
        if latency_ms:
            caps = self._caps if self._caps is not None else cap.detect()
            cap.require(cap.NETEM, caps)
        self._impaired = True
        self._impair(loss_pct, latency_ms)
        self._event("impairment", loss_pct=loss_pct, latency_ms=latency_ms)

    # -- observation ----------------------------------------------------------------------
    def ruleset_json(self) -> str:
        """The router table with its counters and flow sets, as ``nft -j`` prints it."""
        return self.lab.run(self.config.router, ["nft", "-j", "list", "table", "inet", TABLE])

    def observed_flows(self) -> list[ObservedFlow]:
        """Every flow the router forwarded or refused so far (see :mod:`harness.wan.flows`)."""
        return parse_flows(self.ruleset_json(), self._resolved())

    def counters(self) -> dict[str, int]:
        """Packets per named counter: per port and path out, drops each way, replies in."""
        return parse_counters(self.ruleset_json())

    # -- internals ------------------------------------------------------------------------
    def _resolved(self) -> WanAddressing:
        if self.addressing is None:
            raise ComponentError(f"{self.name}: start() first")
        return self.addressing

    def _configure_router(self) -> None:
        a = self._resolved()
        router = self.config.router
        self.lab.run(router, self.config.sysctl_argv())
        script = self.lab.temp_dir / f"{self.name}.nft"
        script.write_text(self.config.nft_ruleset(a))
        self.lab.run(router, ["nft", "-f", str(script)])  # atomic: all of it or nothing
        self._table_loaded = True
        self._event("nft-loaded", table=TABLE, site=a.site_iface, wan=a.wan_iface)

    def _start_tunnel(self) -> None:
        a = self._resolved()
        assert self.backend is not None
        keys = {side: generate_keypair() for side in (ROUTER, CLOUD)}
        hosts = {ROUTER: self.config.router, CLOUD: self.config.cloud}
        # the cloud end first: it listens, the router's end opens the tunnel to it
        for side, peer in ((CLOUD, ROUTER), (ROUTER, CLOUD)):
            end = TunnelEnd(self.lab, hosts[side], side, self.config, a, self.backend,
                            self.name)
            self.tunnel[side] = end
            end.create()
            end.configure(keys[side], keys[peer].public)
        self._event("tunnel", backend=self.backend, router=str(a.tunnel_router),
                    cloud=str(a.tunnel_cloud), port=self.config.wg_port)

    def _impair(self, loss_pct: float, latency_ms: int) -> None:
        # both ends of the WAN link: frames towards the router and towards the cloud
        for host in (self.config.router, self.config.cloud):
            self.lab.impair(host, self.config.wan_segment, delay_ms=latency_ms,
                            loss_pct=loss_pct)

    def _snapshot(self) -> None:
        text = self.ruleset_json()
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)
        flows = [f.to_dict() for f in parse_flows(text, self._resolved())]
        (self.snapshot_dir / f"{self.name}-flows.json").write_text(json.dumps(
            {"lab": self.lab.id, "router": self.config.router, "backend": self.backend,
             "counters": parse_counters(text), "flows": flows}, indent=1))
        (self.snapshot_dir / f"{self.name}-nft.json").write_text(text)

    def _logs(self) -> list[Path]:
        wg_logs = [end.log_path() for end in self.tunnel.values()]
        return [self.events_path, *(p for p in wg_logs if p is not None)]

    def _evidence(self) -> str:
        parts = []
        try:
            parts.append(self.lab.run(self.config.router, ["nft", "list", "table", "inet",
                                                           TABLE]))
        except LabError as exc:
            parts.append(f"(nft: {exc})")
        for end in self.tunnel.values():
            try:
                parts.append(self.lab.run(end.host, ["wg", "show", end.iface]))
            except LabError as exc:
                parts.append(f"(wg show {end.iface}: {exc})")
            if end.process is not None:
                parts.append(end.process.log_tail(15))
        return "\n".join(parts)

    def _event(self, event: str, **fields: object) -> None:
        """One structured line per event, with the lab id and component (STYLE: logs)."""
        self.events_path.parent.mkdir(parents=True, exist_ok=True)
        extra = "".join(f" {k}={v}" for k, v in fields.items())
        with self.events_path.open("a") as fh:
            fh.write(f"{time.time():.3f} lab={self.lab.id} component={self.name} "
                     f"event={event}{extra}\n")
