"""The node agent's shell functions, taken from agent.sh to run alone on the host.

Executing agent.sh would run its main part (disk, DHCP, registration), so the tests
of one step run that step's functions, verbatim, with what they read.
"""

from __future__ import annotations

import re

from nodeimage.initramfs import FILES_DIR


def agent_functions(*names: str, script: str = "agent.sh") -> str:
    """The named shell functions of agent.sh (or another of the image's scripts),
    verbatim, in the order given."""
    agent = (FILES_DIR / script).read_text()
    found = []
    for name in names:
        match = re.search(rf"^{name}\(\) {{(?: [^\n]*}}\n|\n.*?^}}\n)", agent, re.M | re.S)
        assert match, f"{script} has no {name}()"
        found.append(match.group(0))
    return "".join(found)


def agent_settings(*names: str) -> str:
    """The top-level ``NAME=value`` lines of agent.sh for the named variables."""
    agent = (FILES_DIR / "agent.sh").read_text()
    found = []
    for name in names:
        match = re.search(rf"^{name}=.*\n", agent, re.M)
        assert match, f"agent.sh sets no {name}"
        found.append(match.group(0))
    return "".join(found)
