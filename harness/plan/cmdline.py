"""The kernel command line contract between the Control Plane and the node agent, once.

A boot profile's ``cmdline`` is a template: the Control Plane fills ``{cp_url}``,
``{join_token}``, ``{mac}`` and ``{hostname}`` per machine (``controlplane.store.
render_cmdline``), and the node agent (``nodeimage/files/agent.sh``, the sim tier's
emulated agent) reads the ``flexlab.*`` arguments back. The scenario runner, LocalBoot
(certify, site-check --serve) and the vm tier differ only in their consoles, so each
asks :class:`KernelCmdline` for its template instead of writing the string out.
"""

from __future__ import annotations

from dataclasses import dataclass

# The agent's arguments, in the order it has always been given them. flexlab.timeurl: the
# agent sets its clock from the Control Plane before the skew check; a QEMU guest starts
# from the RTC (whole seconds), so without it a TCG guest is 0.3-1.4 s behind and the
# Control Plane's 1 s skew check rejects it about one boot in three (measured).
AGENT_ARGS: tuple[tuple[str, str], ...] = (
    ("flexlab.cp", "{cp_url}"),
    ("flexlab.token", "{join_token}"),
    ("flexlab.mac", "{mac}"),
    ("flexlab.hostname", "{hostname}"),
    ("flexlab.timeurl", "{cp_url}/api/v1/time"),
)
# what the Control Plane substitutes (every other brace is kept verbatim)
PLACEHOLDERS = ("cp_url", "join_token", "mac", "hostname")


@dataclass(frozen=True)
class KernelCmdline:
    """A boot profile's kernel command line: consoles, panic behaviour, the agent's args.

    ``consoles`` are written in order; Linux makes the *last* one ``/dev/console``,
    where the agent writes its ``FLEXLAB-AGENT:`` lines, so the serial port goes last
    (the vm tier's driver reads progress from it). ``panic_reboot`` adds ``panic=-1``:
    a kernel panic reboots at once instead of hanging a VM until its deadline.
    """

    consoles: tuple[str, ...] = ("ttyS0",)
    panic_reboot: bool = True

    def template(self) -> str:
        """The profile's template, with the Control Plane's ``{placeholders}``."""
        words = [f"console={c}" for c in self.consoles]
        if self.panic_reboot:
            words.append("panic=-1")
        words += [f"{key}={value}" for key, value in AGENT_ARGS]
        return " ".join(words)

    def render(self, *, cp_url: str, join_token: str, mac: str, hostname: str) -> str:
        """The line one machine boots with (what the Control Plane's boot data carries)."""
        out = self.template()
        for key, value in (("cp_url", cp_url), ("join_token", join_token), ("mac", mac),
                           ("hostname", hostname)):
            out = out.replace("{" + key + "}", value)
        return out


# A scenario run's machines (sim and vm tier): the serial console only.
NODE_CMDLINE = KernelCmdline()
# LocalBoot's machines are real servers with a screen: tty0 too, the serial port last.
LOCAL_CMDLINE = KernelCmdline(consoles=("tty0", "ttyS0"))
