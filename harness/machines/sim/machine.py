"""One emulated machine: firmware DHCP, 4011, TFTP, the iPXE round, HTTP, the node agent.

Everything runs on the fleet's asyncio loop. DHCP goes out as raw frames on
the shared :class:`~harness.machines.sim.segment.SegmentPort`; once leased,
the machine gets its macvlan (:mod:`harness.machines.sim.netdev`) and uses
kernel sockets bound to it. Firmware timers are multiplied by ``scale`` so a
CI run takes a fraction of real firmware time.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import random
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from controlplane.requirements import MAX_CLOCK_SKEW_S
from harness.machines.sim import http as sim_http
from harness.machines.sim import trust
from harness.machines.sim.agent import (
    CLOCK_TRIES,
    ClockExchange,
    NodeFacts,
    http_clock_facts,
    recv_arrival,
    sntp_offset,
    sntp_request,
    stamp_arrivals,
)
from harness.machines.sim.dhcp import (
    ACK,
    DISCOVER,
    NAK,
    REQUEST,
    ClientIdentity,
    Offer,
    client_message,
    parse_reply,
)
from harness.machines.sim.errors import BootFailed, SimMachineError, TlsRefused
from harness.machines.sim.frames import BROADCAST_MAC, UdpFrame, udp_frame
from harness.machines.sim.netdev import MacvlanFactory, bound_socket
from harness.machines.sim.profiles import FirmwareProfile
from harness.machines.sim.retry import boots_again
from harness.machines.sim.script import BootScript, expand, parse_script
from harness.machines.sim.segment import SegmentPort
from harness.machines.sim.selection import DiscoverySession, Retransmit, Selection
from harness.machines.sim.tftp import TftpClient, scaled_timeouts
from harness.machines.sim.timeline import Timeline
from harness.macs import mac_bytes

ZERO = b"\0\0\0\0"
BCAST = b"\xff\xff\xff\xff"
_TYPES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 5: "ACK", 6: "NAK"}


MAX_NAK_RESTARTS = 8
#: states in which a machine has nothing more to do until its power button is pressed again
SETTLED = ("done", "failed", "off")


class _Nak(SimMachineError):
    """The lease server refused the REQUEST; discovery starts over."""

    def __init__(self, server: str) -> None:
        super().__init__(server)
        self.server = server


@dataclass(frozen=True)
class EmulatorSpec:
    """What one emulated machine is: MAC, firmware, facts, and how far it should go.

    ``stop_after`` ends the boot early: ``dhcp``, ``tftp``, ``script`` or
    ``agent`` (the whole way, the default). ``boot_attempts`` > 1 models firmware
    that reboots and tries the network again after a failed boot, ``reboot_delay``
    firmware seconds later (scaled like every firmware timer); None retries until
    the power is cut, as SeaBIOS and OVMF with a network boot order do (retry.py).
    """

    mac: str
    profile: FirmwareProfile
    uuid: bytes = field(default_factory=lambda: random.randbytes(16))
    facts: NodeFacts = field(default_factory=NodeFacts)
    stop_after: str = "agent"
    boot_attempts: int | None = 1
    reboot_delay: float = 10.0


@dataclass
class Lease:
    """The address a machine holds."""

    address: str
    prefixlen: int
    server: str
    ntp_servers: tuple[str, ...] = ()


class SimMachine:
    """Boots one :class:`EmulatorSpec` through the lab, recording a :class:`Timeline`."""

    def __init__(self, spec: EmulatorSpec, port: SegmentPort, netdevs: MacvlanFactory,
                 ifname: str, *, scale: float = 1.0) -> None:
        self.spec = spec
        self.port = port
        self.netdevs = netdevs
        self.ifname = ifname
        self.scale = scale
        self.ident = ClientIdentity(spec.mac.lower(), spec.uuid)
        self.timeline = Timeline(self.ident.mac, spec.profile.name)
        self.state = "off"
        self.error: BootFailed | None = None
        self.lease: Lease | None = None
        self.files: list[dict[str, Any]] = []
        self.registration: dict[str, Any] | None = None
        # /flexlab/cp-ca.pem as the initrds of this boot's script left it (None: no CA came)
        self.cp_ca: bytes | None = None
        self._inbox: asyncio.Queue[UdpFrame] = asyncio.Queue()
        self._t0 = 0.0
        self._netdev_up = False
        # power: on between power_on() and power_off(); boots and cuts count the presses
        self.powered = False
        self.boots = 0
        self.cuts = 0
        #: monotonic start of every boot that failed (the sim driver's retry.settled)
        self.failed_starts: list[float] = []
        self.tftp: TftpClient | None = None  # the transfer in progress (tests watch its blocks)
        self._task: asyncio.Task[None] | None = None
        self._sockets: list[socket.socket] = []  # kernel sockets of this boot, for a cut
        self._leased = False  # a macvlan was ever asked for (the device worker is in use)

    # -- bookkeeping ---------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic() - self._t0 if self._t0 else 0.0

    def _fw_now(self) -> float:
        return self._now() / self.scale

    def _set_state(self, state: str, **detail: Any) -> None:
        self.state = state
        self.timeline.add(self._now(), "state", state, **detail)

    @property
    def finished(self) -> bool:
        """Nothing more will happen until someone presses the power button.

        Booted, gave up, timed out, or cut by :meth:`power_off` (a machine that was
        never powered on is "off" too, but not finished: it is waiting for its turn).
        """
        return (self.state in ("done", "failed") or self.state.startswith("timeout:")
                or (self.state == "off" and self.cuts > 0 and not self.powered))

    def result(self) -> dict[str, Any]:
        """A JSON-ready summary of the machine's boot (the last one, after a reset)."""
        return {"mac": self.ident.mac, "profile": self.spec.profile.name, "state": self.state,
                "error": str(self.error) if self.error else None,
                "address": self.lease.address if self.lease else None, "files": self.files,
                "registration": self.registration, "boots": self.boots, "cuts": self.cuts,
                "timeline": self.timeline.to_json()}

    # -- power -----------------------------------------------------------------------
    def power_on(self) -> asyncio.Task[None]:
        """Press the power button (call on the fleet's loop): a fresh boot from firmware.

        Nothing survives from an earlier boot but the record (timeline, files): no
        lease, no xid, no join token, no disk. A machine already on is left alone,
        as a real power button press on a running machine does nothing.
        """
        if self.powered and self._task is not None:
            return self._task
        self.powered = True
        self.boots += 1
        self.error = None
        self.lease = None
        self.registration = None
        self.cp_ca = None
        self._inbox = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self.run(),
                                                            name=f"machine-{self.ident.mac}")
        return self._task

    async def power_off(self) -> None:
        """Cut the power (call on the fleet's loop): from ``cut_at`` on the machine sends nothing.

        The machine stops taking frames and its boot task is told to stop at its next
        step, so the emulator sends nothing more. Its device goes first: until it is
        gone the *kernel* still speaks for the machine (it acknowledges TCP data that
        arrives, sends a segment Nagle held back), which a machine without power does
        not. ``cut_at`` is the wall clock once the device is gone (or, with no device,
        once the task was told): from then on a capture shows nothing from this MAC or
        address. Open kernel sockets are held by a duplicate descriptor meanwhile, so
        the task's own closing sends no FIN, and they are closed abortively once the
        device is gone (the reset has no route). The ``power off`` event records the
        state cut, ``began`` (the wall clock as the cut started: from then on only the
        kernel's acknowledgements may still leave), ``cut_at`` and ``unix`` (when the
        task had ended).
        """
        if not self.powered:
            return
        self.powered = False
        was, began = self.state, time.time()
        self.port.unregister(self.ident.mac)
        held = [os.dup(s.fileno()) for s in self._sockets if s.fileno() != -1]
        task = self._task
        if task is not None:
            task.cancel()  # its next step raises: the emulator sends nothing more
        try:
            await self._silence()
            cut_at = time.time()
            while task is not None and not task.done():
                task.cancel()  # again if a library swallowed the first one
                await asyncio.wait({task}, timeout=0.05)
            if self._netdev_up:  # a swallowed cancel let the boot bring its device back
                await self._silence()
                cut_at = time.time()
        finally:
            for fd in held:
                _abort(fd)
            self._sockets.clear()
        self.cuts += 1
        self.tftp = None
        self.timeline.add(self._now(), "power", "power off", state=was, began=began,
                          cut_at=cut_at, unix=time.time())
        self._set_state("off")

    async def _silence(self) -> None:
        """Delete this machine's device and wait until the kernel has done it.

        The device worker is FIFO: a creation the boot task queued runs before this
        removal, and once the no-op after it ran, a removal the task queued itself
        (its ``finally``) is done too.
        """
        await self._remove_netdev()
        if self._leased:
            await asyncio.get_running_loop().run_in_executor(self.netdevs.executor, _nothing)

    def _socket(self, kind: int, port: int = 0) -> socket.socket:
        """A socket on this machine's device, remembered so a power cut can silence it."""
        assert self.lease is not None
        self._sockets = [s for s in self._sockets if s.fileno() != -1]
        sock = bound_socket(kind, self.ifname, self.lease.address, port)
        self._sockets.append(sock)
        return sock

    async def _remove_netdev(self) -> None:
        if not self._netdev_up:
            return
        # free the device (and its neighbour entries, a host-wide budget)
        self._netdev_up = False
        loop = asyncio.get_running_loop()
        await asyncio.shield(loop.run_in_executor(self.netdevs.executor, self.netdevs.remove,
                                                  self.ifname))

    # -- the boot ------------------------------------------------------------------
    async def run(self) -> None:
        """Boot to the end (or to ``stop_after``); failures end in state ``failed``.

        :meth:`power_on` runs this as the machine's task; timeline times count from
        the first power-on, so a reset's events follow the first boot's.
        """
        if not self._t0:
            self._t0 = time.monotonic()
        self.powered = True
        self.boots = max(self.boots, 1)
        self.port.register(self.ident.mac, self._inbox.put_nowait)
        self._set_state("power-on", profile=self.spec.profile.name, boot=self.boots)
        try:
            failed = 0
            while True:
                started = time.monotonic()
                try:
                    await self._boot()
                    self.error = None
                    break
                except BootFailed as exc:
                    failed += 1
                    self.failed_starts.append(started)
                    self.error = exc
                    self.timeline.add(self._now(), "error", exc.code, message=str(exc),
                                      **exc.detail)
                    if not boots_again(failed, self.spec.boot_attempts):
                        self._set_state("failed", code=exc.code, **exc.detail)
                        break
                    self._set_state("rebooting", attempt=failed + 1)
                    # A rebooting machine has no address until its next lease, so its device
                    # goes now: the kernel copies every broadcast on the segment to every
                    # machine's macvlan, and a 5,000-machine storm whose machines kept theirs
                    # while they rebooted dropped 46 M such copies in 150 s
                    # (bench/results/where-storm-5000-breaks.json).
                    await self._remove_netdev()
                    await asyncio.sleep(self.spec.reboot_delay * self.scale)  # POST again
        finally:
            self.port.unregister(self.ident.mac)
            await self._remove_netdev()

    async def _boot(self) -> None:
        prof = self.spec.profile
        sel = await self._dhcp(prof)
        if self.spec.stop_after == "dhcp":
            self._set_state("done")
            return
        server, file = await self._boot_info(prof, sel)
        if prof.chain == "http":
            url = file
            if url.endswith(".efi"):
                await self._http_file(url, "nbp")
                server, file = await self._ipxe_round(prof)
                url = file
        elif prof.chain == "ipxe":
            await self._tftp(prof, server, file)
            if self.spec.stop_after == "tftp":
                self._set_state("done")
                return
            server, url = await self._ipxe_round(prof)
        else:
            url = file
        script = await self._script(url)
        if self.spec.stop_after == "script":
            self._set_state("done")
            return
        await self._agent(script)
        self._set_state("done")

    # -- DHCP ----------------------------------------------------------------------
    def _send_dhcp(self, payload: bytes, msg_type: int, src_ip: bytes = ZERO) -> None:
        if not self.powered:
            return  # no power, no frames (the task is being cancelled)
        frame = udp_frame(mac_bytes(self.ident.mac), BROADCAST_MAC, src_ip, BCAST, 68, 67,
                          payload, ident=random.getrandbits(16))
        self.port.send(frame)
        self.timeline.add(self._now(), "sent", _TYPES[msg_type], dport=67, bytes=len(payload),
                          xid=int.from_bytes(payload[4:8], "big"))

    async def _recv_reply(self, xid: int, deadline_fw: float) -> Offer | None:
        while True:
            left = (deadline_fw - self._fw_now()) * self.scale
            if left <= 0:
                return None
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                # (a power cut) that lands as the frame arrives
                async with asyncio.timeout(left):
                    frame = await self._inbox.get()
            except TimeoutError:
                return None
            src = str(ipaddress.IPv4Address(frame.src_ip))
            reply = parse_reply(frame.payload, src, frame.sport, self._fw_now())
            if reply is None or reply.xid != xid:
                continue
            self.timeline.add(self._now(), "received", _TYPES.get(reply.msg_type, "?"),
                              **reply.to_json())
            return reply

    async def _dhcp(self, prof: FirmwareProfile) -> Selection:
        # RFC 2131 §4.4.1: a NAK sends the client back to INIT (EDK2 and iPXE both restart);
        # dnsmasq reserves nothing at OFFER time, so two clients can be offered one address.
        for restart in range(MAX_NAK_RESTARTS + 1):
            try:
                return await self._dhcp_once(prof)
            except _Nak as nak:
                self.timeline.add(self._now(), "error", "NAK", server=nak.server,
                                  restart=restart + 1)
        raise BootFailed("PXE-E52", f"DHCPNAK {MAX_NAK_RESTARTS + 1} times in a row")

    async def _dhcp_once(self, prof: FirmwareProfile) -> Selection:
        self._set_state("dhcp-discover", profile=prof.name)
        while not self._inbox.empty():
            self._inbox.get_nowait()
        xid = random.getrandbits(32)
        session = DiscoverySession(prof)
        start = self._fw_now()
        self._send_dhcp(client_message(prof, self.ident, DISCOVER, xid), DISCOVER)
        session.start(start)
        selection: Selection | None = None
        while selection is None:
            reply = await self._recv_reply(xid, session.next_deadline())
            now = self._fw_now()
            if reply is not None:
                selection = session.on_offer(reply, now)
                continue
            step = session.on_timer(now)
            if isinstance(step, Retransmit):
                secs = int(now - start)
                self._send_dhcp(client_message(prof, self.ident, DISCOVER, xid, secs=secs),
                                DISCOVER)
            elif step is not None:
                selection = step
        self.timeline.add(self._now(), "chosen", "offer", address=selection.address.to_json(),
                          boot=selection.boot.to_json() if selection.boot else None)
        await self._request(prof, xid, selection.address, int(self._fw_now() - start))
        return selection

    async def _request(self, prof: FirmwareProfile, xid: int, offer: Offer, secs: int) -> None:
        self._set_state("dhcp-request", server=offer.server_id, address=offer.yiaddr)
        payload = client_message(prof, self.ident, REQUEST, xid, secs=secs,
                                 requested_ip=offer.yiaddr, server_id=offer.server_id)
        for timeout in prof.request_timeouts:
            self._send_dhcp(payload, REQUEST)
            deadline = self._fw_now() + timeout
            while True:
                reply = await self._recv_reply(xid, deadline)
                if reply is None:
                    break
                if reply.msg_type == NAK and reply.server_id == offer.server_id:
                    raise _Nak(offer.server_id or reply.src_ip)
                if reply.msg_type == ACK and not reply.is_proxy:
                    await self._bring_up(reply)
                    return
        raise BootFailed("PXE-E51", f"no DHCPACK from {offer.server_id}")

    async def _bring_up(self, ack: Offer) -> None:
        mask = ack.netmask or "255.255.255.0"
        prefix = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
        lease = Lease(ack.yiaddr, prefix, ack.server_id or ack.src_ip, ack.ntp_servers)
        loop = asyncio.get_running_loop()
        if self._netdev_up and self.lease is not None and self.lease.address != lease.address:
            await loop.run_in_executor(self.netdevs.executor, self.netdevs.remove, self.ifname)
            self._netdev_up = False
        if not self._netdev_up:
            self._leased = True
            self._netdev_up = True  # before the await: a cut during creation still removes it
            await loop.run_in_executor(self.netdevs.executor, self.netdevs.create, self.ifname,
                                       self.ident.mac, lease.address, prefix, ack.router)
        self.lease = lease
        self._set_state("bound", address=lease.address, server=lease.server)

    # -- boot server (4011) ----------------------------------------------------------
    async def _boot_info(self, prof: FirmwareProfile, sel: Selection) -> tuple[str, str]:
        boot = sel.boot
        if boot is None:
            raise BootFailed("PXE-E53", "no boot filename received (no ProxyDHCP offer)")
        # iPXE asks the proxy on 4011 for its boot file, unless the offer carries a PXE menu:
        # then it goes straight to a boot-server request for the first item (as recorded)
        if prof.is_ipxe and prof.ipxe_proxy_request and boot.is_proxy and not boot.boot_menu:
            ack = await self._pxe_request(prof, boot.server_id or boot.src_ip, None,
                                          prof.pxebs_timeouts[:1])
            if ack is not None and (ack.file or ack.boot_menu):
                boot = ack
        if boot.file and not boot.boot_menu:
            return boot.boot_server, boot.file
        item = (boot.boot_menu[0][0], 0) if boot.boot_menu else None
        ack = await self._pxe_request(prof, boot.boot_server, item, prof.pxebs_timeouts)
        if ack is None:
            raise BootFailed("PXE-E55", f"no ProxyDHCP reply on UDP 4011 from {boot.boot_server}")
        if not ack.file:
            raise BootFailed("PXE-E53", f"4011 ACK from {ack.src_ip} carries no boot file")
        return ack.boot_server if ack.siaddr != "0.0.0.0" else boot.boot_server, ack.file

    async def _pxe_request(self, prof: FirmwareProfile, server: str,
                           item: tuple[int, int] | None,
                           timeouts: tuple[float, ...]) -> Offer | None:
        assert self.lease is not None
        self._set_state("pxe-request", server=server, item=list(item) if item else None)
        xid = random.getrandbits(32)
        payload = client_message(prof, self.ident, REQUEST, xid, ciaddr=self.lease.address,
                                 boot_item=item, pxebs_server=server)
        sock = self._socket(socket.SOCK_DGRAM, prof.pxebs_sport)
        loop = asyncio.get_running_loop()
        try:
            for timeout in timeouts:
                await loop.sock_sendto(sock, payload, (server, 4011))
                self.timeline.add(self._now(), "sent", "REQUEST", dport=4011,
                                  sport=prof.pxebs_sport, server=server)
                deadline = loop.time() + timeout * self.scale
                while (left := deadline - loop.time()) > 0:
                    try:
                        async with asyncio.timeout(left):  # not wait_for: see _recv_reply
                            data, addr = await loop.sock_recvfrom(sock, 4096)
                    except TimeoutError:
                        break
                    reply = parse_reply(data, addr[0], addr[1], self._fw_now())
                    if reply is None or reply.xid != xid or reply.msg_type != ACK:
                        continue
                    self.timeline.add(self._now(), "received", "ACK", sport=addr[1],
                                      **reply.to_json())
                    return reply
        finally:
            sock.close()
        return None

    # -- TFTP, iPXE, HTTP --------------------------------------------------------------
    async def _tftp(self, prof: FirmwareProfile, server: str, filename: str) -> None:
        assert self.lease is not None
        self._set_state("tftp", server=server, file=filename)
        sock = self._socket(socket.SOCK_DGRAM)
        try:
            client = TftpClient(sock, server, scaled_timeouts(prof.tftp_timeouts, self.scale))
            self.tftp = client
            if prof.tftp_tsize_probe:
                size = await client.probe_size(filename, prof.tftp_blksize)
                self.timeline.add(self._now(), "file", "tsize-probe", file=filename, size=size)
            res = await client.get(filename, blksize=prof.tftp_blksize,
                                   tsize=not prof.tftp_tsize_probe,
                                   windowsize=prof.tftp_windowsize)
        finally:
            sock.close()
            self.tftp = None
        entry = {"proto": "tftp", "name": filename, "size": res.size, "sha256": res.sha256,
                 "oack": res.oack, "retransmits": res.retransmits}
        self.files.append(entry)
        self.timeline.add(self._now(), "file", filename, **entry)

    async def _ipxe_round(self, prof: FirmwareProfile) -> tuple[str, str]:
        ipxe = prof.ipxe_stage()
        self._set_state("ipxe")
        sel = await self._dhcp(ipxe)
        return await self._boot_info(ipxe, sel)

    async def _http_file(self, url: str, kind: str,
                         user_agent: str = "iPXE/1.0.0+") -> sim_http.HttpResponse:
        assert self.lease is not None
        sock = self._socket(socket.SOCK_STREAM)
        resp = await sim_http.request(sock, url, timeout=max(30.0, 60 * self.scale),
                                      user_agent=user_agent)
        entry = {"proto": "http", "kind": kind, "name": url, "status": resp.status,
                 "size": resp.size, "sha256": resp.sha256}
        self.files.append(entry)
        self.timeline.add(self._now(), "file", kind, **entry)
        if resp.status != 200:
            raise BootFailed("HTTP", f"GET {url} answered {resp.status}")
        return resp

    def _settings(self) -> dict[str, str]:
        prof = self.spec.profile
        u = self.spec.uuid
        uuid = "-".join((u[0:4][::-1].hex(), u[4:6][::-1].hex(), u[6:8][::-1].hex(),
                         u[8:10].hex(), u[10:16].hex()))
        return {"mac": self.ident.mac, "net0/mac": self.ident.mac,
                "mac:hexhyp": self.ident.mac.replace(":", "-"),
                "uuid": uuid, "buildarch": "i386" if prof.arch == 0 else "x86_64",
                "platform": "pcbios" if prof.arch == 0 else "efi",
                "ip": self.lease.address if self.lease else ""}

    async def _script(self, url: str) -> BootScript:
        url = expand(url, self._settings())  # iPXE expands settings in a DHCP filename
        self._set_state("script", url=url)
        for _ in range(4):
            resp = await self._http_file(url, "script")
            script = parse_script(resp.body.decode("utf-8", "replace"), url, self._settings())
            if script.chain is None:
                break
            url = script.chain
        else:
            raise BootFailed("IPXE", f"script chain from {url} too deep")
        if script.kernel is None:
            raise BootFailed("IPXE", f"script {url} names no kernel")
        self._set_state("kernel", url=script.kernel)
        await self._http_file(script.kernel, "kernel")
        self.cp_ca = None
        for initrd in script.initrds:
            resp = await self._http_file(initrd, "initrd")
            # Linux unpacks every initrd into one initramfs; the agent reads its CA there
            # (bodies over 1 MiB are not kept: the image, never the CA archive)
            try:
                self.cp_ca = trust.cp_ca([resp.body]) or self.cp_ca
            except trust.CpioError as exc:  # the kernel says so and boots on without it
                self.timeline.add(self._now(), "error", "INITRD", url=initrd, message=str(exc))
        return script

    # -- node agent ------------------------------------------------------------------
    async def _agent(self, script: BootScript) -> None:
        assert self.lease is not None
        cp = script.cmdline_arg("flexlab.cp")
        token = script.cmdline_arg("flexlab.token")
        if not cp or not token:
            raise BootFailed("AGENT", "kernel command line lacks flexlab.cp= or flexlab.token=")
        self._set_state("agent", cp=cp)
        tls, no_ca = self._cp_trust(cp)
        # like nodeimage/files/agent.sh: set the clock from the site's NTP server (DHCP
        # option 42) before registering; without one the clock stays as the machine
        # started (skewed by facts.clock_skew) and the Control Plane judges its offset
        # measured against the Control Plane's time (below)
        correction = 0.0
        synced = False
        if self.lease.ntp_servers:
            server = self.lease.ntp_servers[0]
            try:
                correction = await self._ntp_offset(server)
            except (OSError, TimeoutError, ValueError) as exc:
                self.timeline.add(self._now(), "state", "clock", ntp=server,
                                  error=f"{type(exc).__name__}: {exc}")
            else:
                synced = True
                self.timeline.add(self._now(), "state", "clock", ntp=server,
                                  stepped=round(correction, 3))
        else:
            self.timeline.add(self._now(), "state", "clock", ntp=None,
                              skew=round(self.spec.facts.clock_skew, 3))
        measured: dict[str, Any] = {}
        if no_ca is None and not synced:
            # like agent.sh's check_clock: without an NTP step, the clock's offset from
            # the Control Plane's, with its error bound, is what the registration reports
            url = cp.rstrip("/") + "/api/v1/time"
            measured = http_clock_facts(url, await self._http_clock(url, tls, correction))
            self.timeline.add(self._now(), "state", "clock", http=url,
                              offset=measured.get("clock_offset_s"),
                              error=measured.get("clock_error_s"))
        firmware = "bios" if self.spec.profile.arch == 0 else "efi"
        lease = self.lease

        def body() -> dict[str, Any]:
            # the agent's clock as it stands when the request leaves (see sim_http.request)
            clock = time.time() + self.spec.facts.clock_skew + correction
            return self.spec.facts.payload(self.ident.mac, firmware, clock, ipv4=lease.address,
                                           clock=measured)

        try:
            if no_ca is not None:
                raise no_ca
            reg = await self._api(cp, "/api/v1/nodes/register", token, body, tls)
            self.registration = reg
            state = reg.get("state")
            self._set_state("registered" if state == "Registered" else "rejected",
                            reasons=reg.get("reasons", []))
            if state != "Registered":
                raise BootFailed("AGENT", f"registration {state}: {reg.get('reasons')}")
            await self._api(cp, f"/api/v1/nodes/{self.ident.mac}/ready", reg["node_token"],
                            {}, tls)
        except TlsRefused as refused:
            # the handshake failed before a byte of the request (the token) left
            self._set_state("tls-refused", url=cp, **refused.detail)
            raise
        self._set_state("ready")

    def _cp_trust(self, cp: str) -> tuple[ssl.SSLContext | None, TlsRefused | None]:
        """The TLS context for an ``https://`` Control Plane from the CA this boot delivered
        (None for ``http://``), or the ``no-ca`` refusal every call to it will meet.

        Recorded as the agent logs it (``tls ca=... sha256=... subject=...`` or
        ``tls ca=none reason=no-ca-initrd``); the refusal itself comes at the first
        call, as in nodeimage/files/https.sh.
        """
        parts = urlsplit(cp)
        if parts.scheme != "https":
            return None, None
        host = parts.hostname or ""
        if self.cp_ca is None:
            self.timeline.add(self._now(), "state", "tls", ca=None, reason="no-ca-initrd")
            return None, TlsRefused("no-ca", 0, host, f"no /{trust.CA_PATH} in the initrds")
        try:
            context, info = trust.client_context(self.cp_ca)
        except ValueError as exc:
            self.timeline.add(self._now(), "state", "tls", ca=None, reason="unreadable")
            return None, TlsRefused("no-ca", 0, host, f"/{trust.CA_PATH}: {exc}")
        self.timeline.add(self._now(), "state", "tls", ca=f"/{trust.CA_PATH}",
                          sha256=info.sha256, subject=info.subject)
        return context, None

    async def _http_clock(self, url: str, tls: ssl.SSLContext | None,
                          correction: float) -> list[ClockExchange]:
        """Two-way exchanges with the Control Plane's time, as agent.sh's measure_http
        makes them: this machine's clock just before the request is written (after the
        connection and any handshake) and once the answer is in; at most CLOCK_TRIES,
        fewer once one decides the verdict. An exchange that fails is left out."""
        found: list[ClockExchange] = []
        for _ in range(CLOCK_TRIES):
            sent: list[float] = []
            clock = _skewed_clock(self.spec.facts.clock_skew + correction)
            try:
                resp = await sim_http.request(
                    self._socket(socket.SOCK_STREAM), url, body=_stamping(clock, sent),
                    user_agent="flexlab-agent-sim", tls=tls)
                received = clock()
                server = float(resp.json()["unix"]) if resp.status == 200 else None
            except (BootFailed, ValueError, KeyError, TypeError):
                continue
            if server is None or not sent:
                continue
            found.append(ClockExchange(sent[0], server, received))
            if found[-1].decides(MAX_CLOCK_SKEW_S):
                break
        return found

    async def _ntp_offset(self, server: str) -> float:
        """One SNTP exchange (RFC 4330) from this machine's address: the step that brings
        its skewed clock to the server's. Raises on no answer or a malformed one."""
        sock = self._socket(socket.SOCK_DGRAM)
        sock.setblocking(False)
        stamp_arrivals(sock)  # t4 is when the reply arrived, not when this loop got to it
        loop = asyncio.get_running_loop()
        skewed = time.time() + self.spec.facts.clock_skew
        await loop.sock_sendto(sock, sntp_request(skewed), (server, 123))
        async with asyncio.timeout(2.0 * self.scale + 1):  # not wait_for: see _recv_reply
            data, arrived = await recv_arrival(sock, 512)
        return sntp_offset(data, skewed, arrived + self.spec.facts.clock_skew)

    async def _api(self, cp: str, path: str, token: str | None,
                   body: dict[str, Any] | Callable[[], dict[str, Any]] | None,
                   tls: ssl.SSLContext | None = None) -> Any:
        """GET (``body`` None) or POST JSON to the Control Plane, as the agent does
        (over TLS with ``tls`` for an ``https://`` Control Plane); a callable ``body`` is
        built once connected, so the clock it reports is read as the request leaves."""
        assert self.lease is not None
        sock = self._socket(socket.SOCK_STREAM)
        method = "GET" if body is None else "POST"
        headers = {} if body is None else {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = await sim_http.request(
            sock, cp.rstrip("/") + path, method=method,
            body=b"" if body is None else _json_body(body), headers=headers,
            user_agent="flexlab-agent-sim", tls=tls)
        self.timeline.add(self._now(), "sent", f"{method} {path}", status=resp.status)
        if resp.status != 200:
            raise BootFailed("AGENT", f"{method} {path} answered {resp.status}: "
                             f"{resp.body[:200]!r}")
        return resp.json()


def _skewed_clock(skew: float) -> Callable[[], float]:
    """This machine's clock: the host's, ``skew`` seconds off."""
    return lambda: time.time() + skew


def _stamping(clock: Callable[[], float], into: list[float]) -> Callable[[], bytes]:
    """An empty request body that records ``clock()`` in ``into`` as the request is
    written (sim_http.request calls it then)."""
    def stamp() -> bytes:
        into.append(clock())
        return b""
    return stamp


def _json_body(body: dict[str, Any] | Callable[[], dict[str, Any]]
               ) -> bytes | Callable[[], bytes]:
    """The request body as JSON bytes, or a callable that makes them when called."""
    if callable(body):
        return lambda: json.dumps(body()).encode()
    return json.dumps(body).encode()


def _nothing() -> None:
    """A barrier job for the device worker."""


def _abort(fd: int) -> None:
    """Close a held socket descriptor abortively: no FIN, no lingering orphan.

    Called after the machine's device is gone, so the reset the kernel tries to
    send has no route and never reaches the wire.
    """
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(OSError):
        if sock.type == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
