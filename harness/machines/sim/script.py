"""Reading an iPXE script the way iPXE would, for the few commands a boot script uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from harness.machines.sim.errors import BootFailed

_SETTING = re.compile(r"\$\{([a-z0-9_:/.-]+)\}", re.IGNORECASE)


@dataclass
class BootScript:
    """What a script asks for: kernel URL + args, initrd URLs, or a chain to another URL."""

    kernel: str | None = None
    cmdline: str = ""
    initrds: list[str] = field(default_factory=list)
    chain: str | None = None
    boots: bool = False

    def cmdline_arg(self, key: str) -> str | None:
        """Value of ``key=value`` on the kernel command line."""
        for word in self.cmdline.split():
            if word.startswith(key + "="):
                return word.split("=", 1)[1]
        return None


def expand(text: str, settings: dict[str, str]) -> str:
    """Replace ``${name}`` with iPXE settings (unknown ones become empty, as in iPXE)."""
    return _SETTING.sub(lambda m: settings.get(m[1].lower(), ""), text)


def parse_script(text: str, base_url: str, settings: dict[str, str]) -> BootScript:
    """Parse ``text`` fetched from ``base_url``; relative URLs resolve against it."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#!ipxe"):
        raise BootFailed("IPXE", f"{base_url} is not an iPXE script (no #!ipxe line)")
    out = BootScript()
    for raw in lines[1:]:
        line = raw.strip()
        if not line or line.startswith(("#", ":")):
            continue
        words = expand(line, settings).split()
        cmd, opts, args = words[0], *_split_options(words[1:])
        if cmd in ("kernel", "imgexec", "chain") and args:
            url = urljoin(base_url, args[0])
            if cmd == "chain" and not out.kernel and _is_script_url(url, opts):
                out.chain = url
                return out
            out.kernel, out.cmdline = url, " ".join(args[1:])
            if cmd in ("imgexec", "chain"):
                out.boots = True
        elif cmd in ("initrd", "module", "imgfetch") and args:
            out.initrds.append(urljoin(base_url, args[0]))
        elif cmd == "boot":
            out.boots = True
    return out


#: image command options that take a value (iPXE ``imgfetch --name initrd URL``)
_VALUED = {"--name", "-n", "--timeout", "-t"}


def _split_options(words: list[str]) -> tuple[list[str], list[str]]:
    """Split leading iPXE command options from the arguments (URL, then cmdline)."""
    opts: list[str] = []
    i = 0
    while i < len(words) and words[i].startswith("-"):
        opts.append(words[i])
        if words[i] in _VALUED and i + 1 < len(words):
            opts.append(words[i + 1])
            i += 1
        i += 1
    return opts, words[i:]


def _is_script_url(url: str, opts: list[str]) -> bool:
    if url.endswith((".ipxe", ".txt", "/")):
        return True
    return "boot" in url.rsplit("/", 1)[-1] and not url.endswith((".efi", ".kpxe", "vmlinuz"))
