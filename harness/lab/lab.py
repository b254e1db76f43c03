"""Building a declared topology on this host, and tearing it down on every path."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from harness.errors import DependencyError, LabError
from harness.lab import names
from harness.lab.cleanup import destroy
from harness.lab.netlink import create_netns, ns_route
from harness.lab.process import LabProcess, run_once
from harness.lab.registry import ProcessRecord, Registry, new_record, process_starttime
from harness.lab.tcpdump import PacketCapture
from harness.lab.topology import Host, LinkState, Topology
from harness.logs import log_event

IFA_F_NODAD = 0x02
_POOL = ipaddress.IPv4Network("10.64.0.0/10")


@dataclass
class LinkInfo:
    """A built host link: where it is and what it is called on each side."""

    host: str
    segment: str
    index: int
    host_iface: str
    switch_port: str
    address: ipaddress.IPv4Interface | None
    address6: ipaddress.IPv6Interface | None
    mac: str = ""
    state: LinkState = LinkState.DECLARED


def _check_privileges() -> None:
    if os.geteuid() != 0:
        raise DependencyError(
            "the lab needs root (network namespaces): run as root or use the unit tier"
        )
    for prog, pkg in (("nsenter", "util-linux"), ("sysctl", "procps")):
        if not any(Path(d, prog).exists() for d in ("/usr/bin", "/usr/sbin", "/bin", "/sbin")):
            raise DependencyError(f"{prog} not found: apt-get install {pkg}")


def _host_networks() -> list[ipaddress.IPv4Network]:
    with IPRoute() as ipr:
        nets = []
        for addr in ipr.get_addr(family=2):
            nets.append(
                ipaddress.IPv4Interface(
                    f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}"
                ).network
            )
        return nets


class Lab:
    """A lab: the built form of a :class:`Topology`, named after one short id.

    Use it as a context manager: ``with Lab(topology) as lab:``. A build
    that fails halfway removes what it made; teardown runs on every path and
    raises :class:`LabError` listing anything it could not remove.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        reports_dir: Path | None = None,
        lab_id: str | None = None,
        registry: Registry | None = None,
        capture: bool = True,
    ) -> None:
        topology.validate()
        self.topology = topology
        self.id = lab_id or names.new_lab_id()
        self.registry = registry or Registry()
        self.reports_dir = (reports_dir or Path("reports") / "labs") / self.id
        self.temp_dir = names.temp_dir(self.id)
        self.ram_dir = names.ram_dir(self.id)
        self.subnets: dict[str, ipaddress.IPv4Network] = {}
        self.subnets6: dict[str, ipaddress.IPv6Network] = {}
        self.links: dict[tuple[str, str], LinkInfo] = {}
        self.processes: list[LabProcess] = []
        self.capture_all = capture
        self.captures: dict[str, PacketCapture] = {}  # the whole-life capture per segment
        self.pcaps: dict[str, Path] = {}
        self._record = new_record(self.id)
        self._built = False

    # -- naming ---------------------------------------------------------------
    @property
    def switch_ns(self) -> str:
        """The namespace holding this lab's bridges."""
        return names.switch_ns(self.id)

    def ns(self, host: str) -> str:
        """Namespace name of ``host``."""
        self.topology.host(host)
        return names.host_ns(self.id, host)

    def link(self, host: str, segment: str) -> LinkInfo:
        """The built link of ``host`` on ``segment``."""
        try:
            return self.links[(host, segment)]
        except KeyError:
            raise LabError(f"host {host!r} has no link on segment {segment!r}") from None

    def address(self, host: str, segment: str) -> str:
        """Static IPv4 address of ``host`` on ``segment`` (no prefix)."""
        info = self.link(host, segment)
        if info.address is None:
            raise LabError(f"host {host!r} has no static address on segment {segment!r}")
        return str(info.address.ip)

    def dhcp_pool(self, segment: str) -> tuple[str, str]:
        """First and last address a DHCP server may lease on ``segment``: its upper half."""
        net = self.subnets[segment]
        hosts = list(net.hosts())
        return str(hosts[len(hosts) // 2]), str(hosts[-1])

    # -- life -----------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.build()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def build(self) -> None:
        """Create namespaces, bridges, veths and addresses; undo everything on failure."""
        _check_privileges()
        started = time.monotonic()
        log_event("lab_build", f"building lab {self.id}", lab=self.id,
                  segments=[s.name for s in self.topology.segments],
                  hosts=[h.name for h in self.topology.hosts])
        self._allocate_addresses()
        self._record.namespaces = [self.switch_ns] + [
            names.host_ns(self.id, h.name) for h in self.topology.hosts
        ]
        self._record.temp_dirs = [str(self.temp_dir), str(self.ram_dir)]
        self.registry.save(self._record)  # intent first: a crash from here on is cleanable
        try:
            self.temp_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
            self.ram_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
            self.reports_dir.mkdir(parents=True, exist_ok=True)
            self._build_switch()
            if self.capture_all:
                for seg in self.topology.segments:
                    self.captures[seg.name] = self.capture(seg.name)
                    self.pcaps[seg.name] = self.captures[seg.name].pcap
            for host in self.topology.hosts:
                self._build_host(host)
        except BaseException as exc:
            log_event("lab_build_failed", f"lab {self.id} build failed: {exc}",
                      level=logging.WARNING, lab=self.id, error=type(exc).__name__)
            self.teardown()
            raise
        self._built = True
        seconds = round(time.monotonic() - started, 3)
        log_event("lab_built", f"lab {self.id} built in {seconds} s", lab=self.id,
                  seconds=seconds)

    def teardown(self) -> None:
        """Stop every process, remove every namespace and temp dir of this lab."""
        started = time.monotonic()
        log_event("lab_teardown", f"tearing lab {self.id} down", lab=self.id,
                  processes=len(self.processes))
        errors: list[str] = []
        for proc in reversed(self.processes):
            try:
                proc.stop()
            except Exception as exc:  # keep going: the rest must still be removed
                errors.append(f"stop {proc.name}: {exc}")
        errors += destroy(self._record, self.registry)
        for info in self.links.values():
            info.state = LinkState.REMOVED
        self._built = False
        seconds = round(time.monotonic() - started, 3)
        log_event("lab_torn_down", f"lab {self.id} removed in {seconds} s"
                  + (f", {len(errors)} problem(s) left" if errors else ""),
                  level=logging.WARNING if errors else logging.INFO, lab=self.id,
                  seconds=seconds, problems=errors)
        if errors:
            raise LabError(f"lab {self.id} teardown left problems:\n  " + "\n  ".join(errors))

    # -- processes -------------------------------------------------------------
    def start_process(self, name: str, argv: list[str], host: str | None,
                      env: dict[str, str] | None = None) -> LabProcess:
        """Start ``argv`` in ``host``'s namespace (the switch namespace when None), with
        ``env`` added to this process's environment (secrets go there, not in ``argv``).

        The PID is recorded in the registry, so a crashed run's processes are
        found by ``flexlab clean``. A Python service (the Control Plane, a Boot Proxy
        process) starts warm, forked from this process's fork server for it
        (:mod:`harness.forkserver`): every lab starts one, and its imports were most of
        the lab's start CPU.
        """
        netns = self.switch_ns if host is None else self.ns(host)
        return self._adopt(LabProcess(name, argv, self.log_path(name), netns, env=env,
                                      warm=True))

    def log_path(self, name: str) -> Path:
        """Where the lab process ``name`` logs (it outlives the lab, for the reports)."""
        return self.reports_dir / "logs" / f"{name}.log"

    def _adopt(self, proc: LabProcess) -> LabProcess:
        """Start ``proc`` as this lab's: recorded in the registry, stopped by teardown."""
        proc.start()
        self.processes.append(proc)
        self._record.processes.append(
            ProcessRecord(proc.pid, process_starttime(proc.pid) or 0, proc.name)
        )
        self.registry.save(self._record)
        return proc

    # -- captures --------------------------------------------------------------
    def capture(self, segment: str, bpf: str | None = None, *,
                name: str | None = None, timeout: float = 10.0) -> PacketCapture:
        """Capture ``segment`` (every frame its bridge forwards, or ``bpf``'s) into
        ``<reports>/pcap/<name>.pcap`` until stopped or the lab is torn down.

        tcpdump runs in the switch namespace on the segment's bridge (a bridge in
        promiscuous mode sees every frame it forwards); this returns once it listens.
        The default name is the segment's own, taken by the lab's whole-life capture.
        """
        if segment not in self.subnets:
            raise LabError(f"no segment {segment!r} in this lab")
        label = name or segment
        cap = PacketCapture(f"capture-{label}", names.bridge(segment),
                            self.reports_dir / "pcap" / f"{label}.pcap", bpf=bpf,
                            netns=self.switch_ns, log_path=self.log_path(f"capture-{label}"))
        self._adopt(cap)
        cap.wait_ready(timeout)
        return cap

    def capture_stats(self, segment: str) -> dict[str, int]:
        """The whole-life capture's counters for ``segment`` (captured, received, dropped),
        known once it stopped; empty when the segment was not captured."""
        cap = self.captures.get(segment)
        return cap.stats() if cap is not None else {}

    def run(self, host: str | None, argv: list[str], timeout: float = 30) -> str:
        """Run a short command in a namespace and return its stdout; raise LabError on failure."""
        netns = self.switch_ns if host is None else self.ns(host)
        res = run_once(argv, netns, timeout)
        if res.returncode != 0:
            raise LabError(f"{' '.join(argv)} in {netns} failed ({res.returncode}): {res.stderr}")
        return res.stdout

    def sysctl(self, host: str | None, key: str, value: str) -> None:
        """Set a per-namespace sysctl (e.g. ``net.ipv4.ip_forward``)."""
        self.run(host, ["sysctl", "-q", "-w", f"{key}={value}"])

    # -- links -----------------------------------------------------------------
    def set_link(self, host: str, segment: str, up: bool) -> None:
        """Cut (``up=False``) or restore a host's link, from the switch side."""
        info = self.link(host, segment)
        with ns_route(self.switch_ns) as sw:
            idx = sw.link_lookup(ifname=info.switch_port)[0]
            sw.link("set", index=idx, state="up" if up else "down")
        info.state = LinkState.UP if up else LinkState.DOWN

    def impair(self, host: str, segment: str, delay_ms: int = 0, loss_pct: float = 0.0) -> None:
        """Add loss and/or latency to frames forwarded towards ``host`` on ``segment``.

        Loss is an nftables bridge rule in the switch namespace (random drop);
        latency needs the kernel's netem qdisc, which some kernels (this CI
        host's among them) lack: then DependencyError says so. Zero for both
        removes the impairment.
        """
        info = self.link(host, segment)
        table = f"impair_{host}_{info.index}"
        self.run(None, ["nft", "add", "table", "bridge", table])
        self.run(None, ["nft", "delete", "table", "bridge", table])
        if loss_pct:
            script = self.temp_dir / f"{table}.nft"
            sample = ("" if loss_pct >= 100
                      else f"numgen random mod 10000 < {int(loss_pct * 100)} ")
            script.write_text(
                f"table bridge {table} {{\n  chain forward {{\n"
                "    type filter hook forward priority -10; policy accept;\n"
                f'    oifname "{info.switch_port}" {sample}counter drop\n  }}\n}}\n'
            )
            self.run(None, ["nft", "-f", str(script)])
        with ns_route(self.switch_ns) as sw:
            idx = sw.link_lookup(ifname=info.switch_port)[0]
            with contextlib.suppress(NetlinkError):  # no qdisc yet: nothing to remove
                sw.tc("del", index=idx, handle="1:", root=True)
            if delay_ms:
                try:
                    sw.tc("add", "netem", index=idx, handle="1:", root=True,
                          delay=delay_ms * 1000)
                except NetlinkError as exc:
                    raise DependencyError(
                        f"latency needs the netem qdisc, which this kernel lacks ({exc}); "
                        "use loss only, or a kernel with sch_netem"
                    ) from exc

    def add_route(self, host: str, destination: str, via: str) -> None:
        """Route ``destination`` (a CIDR) from ``host`` through gateway ``via`` (a lab address)."""
        net = ipaddress.IPv4Network(destination)
        with ns_route(self.ns(host)) as hn:
            hn.route("add", dst=str(net.network_address), dst_len=net.prefixlen, gateway=via)

    def link_states(self) -> dict[tuple[str, str], LinkState]:
        """Current state of every host link."""
        return {key: info.state for key, info in self.links.items()}

    # -- internals -------------------------------------------------------------
    def _allocate_addresses(self) -> None:
        taken = _host_networks()
        rng = random.SystemRandom()
        # one random ULA /48 per lab (RFC 4193), a /64 per segment
        ula = int(ipaddress.IPv6Address("fd00::")) | (rng.getrandbits(40) << 80)
        for index, seg in enumerate(self.topology.segments):
            if seg.subnet:
                net = ipaddress.IPv4Network(seg.subnet)
            else:
                size = 1 << (32 - seg.prefixlen)
                for _ in range(1000):
                    offset = rng.randrange(_POOL.num_addresses // size) * size
                    net = ipaddress.IPv4Network((int(_POOL.network_address) + offset,
                                                 seg.prefixlen))
                    clash = [*taken, *self.subnets.values()]
                    if not any(net.overlaps(t) for t in clash):
                        break
                else:
                    raise LabError(f"no free private /{seg.prefixlen} for segment {seg.name!r}")
            self.subnets[seg.name] = net
            self.subnets6[seg.name] = ipaddress.IPv6Network((ula + (index << 64), 64))
        next_auto = {seg: iter(net.hosts()) for seg, net in self.subnets.items()}
        fixed = {
            link.address for host in self.topology.hosts for link in host.links if link.address
        }
        counters: dict[str, int] = {}
        for host in self.topology.hosts:
            for index, hl in enumerate(host.links):
                addr: ipaddress.IPv4Interface | None = None
                addr6: ipaddress.IPv6Interface | None = None
                net = self.subnets[hl.segment]
                if hl.address is not None:
                    if hl.address == "auto":
                        ip = next(next_auto[hl.segment])
                        while str(ip) in fixed:
                            ip = next(next_auto[hl.segment])
                    else:
                        ip = ipaddress.IPv4Address(hl.address)
                    addr = ipaddress.IPv4Interface(f"{ip}/{net.prefixlen}")
                    counters[hl.segment] = counters.get(hl.segment, 0) + 1
                    net6 = self.subnets6[hl.segment]
                    addr6 = ipaddress.IPv6Interface(
                        f"{net6.network_address + counters[hl.segment]}/64"
                    )
                self.links[(host.name, hl.segment)] = LinkInfo(
                    host=host.name,
                    segment=hl.segment,
                    index=index,
                    host_iface=names.host_iface(index),
                    switch_port=names.switch_port(host.name, index),
                    address=addr,
                    address6=addr6,
                )

    def _build_switch(self) -> None:
        create_netns(self.switch_ns)
        with ns_route(self.switch_ns) as sw:
            lo = sw.link_lookup(ifname="lo")[0]
            sw.link("set", index=lo, state="up")
            for seg in self.topology.segments:
                sw.link("add", ifname=names.bridge(seg.name), kind="bridge",
                        br_mcast_snooping=0, br_stp_state=0, br_forward_delay=0)
                idx = sw.link_lookup(ifname=names.bridge(seg.name))[0]
                sw.link("set", index=idx, state="up")
        # bridged frames must not be handed to netfilter (br_netfilter, loaded by Docker)
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            if Path("/proc/sys", *key.split(".")).exists():
                self.sysctl(None, key, "0")

    def artifacts(self) -> list[Path]:
        """Every pcap and component log this lab wrote (they outlive the lab)."""
        return sorted(p for p in self.reports_dir.rglob("*") if p.is_file())

    def _build_host(self, host: Host) -> None:
        ns_name = names.host_ns(self.id, host.name)
        create_netns(ns_name)
        with ns_route(ns_name) as hn:
            lo = hn.link_lookup(ifname="lo")[0]
            hn.link("set", index=lo, state="up")
        # no duplicate address detection in a lab namespace (addresses are unique by
        # construction): while a link-local address is tentative the kernel sources an
        # early router advertisement from the segment's ULA, which hosts must ignore
        self.run(host.name, ["sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0",
                             "net.ipv6.conf.default.accept_dad=0"])
        for hl in host.links:
            self._attach(host.name, hl.segment, ns_name)
        if host.forwarding:
            self.sysctl(host.name, "net.ipv4.ip_forward", "1")

    def relink(self, host: str, segment: str, target_netns: str | None = None) -> None:
        """Re-create a host's link whose veth was destroyed (e.g. with a removed container).

        ``target_netns`` names where the host end goes (default: the host's namespace).
        """
        self._attach(host, segment, target_netns or self.ns(host))

    def _attach(self, host: str, segment: str, ns_name: str) -> None:
        info = self.links[(host, segment)]
        with ns_route(self.switch_ns) as sw:
            with contextlib.suppress(IndexError, NetlinkError):  # a stale half of the pair
                sw.link("del", index=sw.link_lookup(ifname=info.switch_port)[0])
            sw.link("add", ifname=info.switch_port, kind="veth",
                    peer={"ifname": info.host_iface, "net_ns_fd": ns_name})
            port = sw.link_lookup(ifname=info.switch_port)[0]
            br = sw.link_lookup(ifname=names.bridge(segment))[0]
            sw.link("set", index=port, master=br, state="up")
        with ns_route(ns_name) as hn:
            idx = hn.link_lookup(ifname=info.host_iface)[0]
            if info.address is not None:
                hn.addr("add", index=idx, address=str(info.address.ip),
                        prefixlen=info.address.network.prefixlen)
            if info.address6 is not None:
                hn.addr("add", index=idx, address=str(info.address6.ip), prefixlen=64,
                        flags=IFA_F_NODAD)
            hn.link("set", index=idx, state="up")
            info.mac = hn.get_links(idx)[0].get("IFLA_ADDRESS")
        info.state = LinkState.UP
