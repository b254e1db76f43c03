"""Tell the Control Plane which architecture a served machine boots as, when it is one
this proxy has no boot file for.

A machine whose firmware is not x86-64 (an ARM64 UEFI DISCOVER, PXE arch 11, CLI-3)
gets no offer: the proxy never hands it an x86 binary (IPXE-1). It never runs the node
agent either, so without this report the Control Plane would only see a machine that
stays Pending; with it, the Control Plane rejects the machine with the reason. One
report per (MAC, architecture) per proxy run: firmware retransmits its DISCOVER.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bootproxy.logs import log_event

_LOG = logging.getLogger("bootproxy.archreport")

Report = Callable[[str, int, str], Awaitable[int]]


class ArchReporter:
    """Reports each (MAC, unsupported architecture) once, in the background."""

    def __init__(self, report: Report | None) -> None:
        self.report = report
        self.reported: set[tuple[str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def seen(self, mac: str, arch: int, iface: str) -> None:
        """A served ``mac`` booted as ``arch`` (no file for it): log it, report it once."""
        if (mac, arch) in self.reported:
            return
        self.reported.add((mac, arch))
        log_event(_LOG, "unsupported_arch", logging.WARNING, mac=mac, arch=arch,
                  interface=iface, reported=self.report is not None)
        if self.report is not None:
            task = asyncio.get_running_loop().create_task(self._send(mac, arch, iface))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Return once every report in flight has been sent or has failed."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, mac: str, arch: int, iface: str) -> None:
        assert self.report is not None
        try:
            status = await self.report(mac, arch, iface)
        except Exception as exc:  # the CP unreachable: report again on the next DISCOVER
            self.reported.discard((mac, arch))
            log_event(_LOG, "arch_report_failed", logging.WARNING, mac=mac, error=str(exc))
            return
        if status >= 500:
            self.reported.discard((mac, arch))
        log_event(_LOG, "arch_reported", logging.INFO, mac=mac, arch=arch, status=status)
