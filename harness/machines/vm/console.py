"""Follow the node agent on a VM's serial console log.

The agent prints one ``FLEXLAB-AGENT: <kind> key=value ...`` line per step
(docs/NODEIMAGE.md lists them). This module turns those lines into typed events
and waits for one, raising with the console tail when it does not come.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.machines.vm.errors import VmError

AGENT_PREFIX = "FLEXLAB-AGENT: "


class ConsoleTimeout(VmError):
    """The expected agent line did not appear in time; the message carries the console tail."""


@dataclass(frozen=True)
class AgentEvent:
    """One agent line: its kind (first word), ``key=value`` fields, bare words such as
    ``ok``/``off``, and the JSON payload of a ``facts`` line."""

    kind: str
    fields: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()
    payload: dict[str, object] | None = None
    raw: str = ""


def parse_agent_line(line: str) -> AgentEvent | None:
    """Parse one console line; ``None`` if it is not an agent line."""
    line = line.strip().replace("\r", "")
    start = line.find(AGENT_PREFIX)
    if start < 0:
        return None
    body = line[start + len(AGENT_PREFIX):]
    kind, _, rest = body.partition(" ")
    if kind == "facts":
        try:
            payload = json.loads(rest)
        except json.JSONDecodeError:
            payload = None
        return AgentEvent(kind, {}, (), payload if isinstance(payload, dict) else None, body)
    fields: dict[str, str] = {}
    bare: list[str] = []
    tokens = rest.split(" ") if rest else []
    for index, token in enumerate(tokens):
        key, sep, value = token.partition("=")
        if not sep:
            bare.append(token)
        elif key == "reasons":  # a JSON list that may contain spaces: take the rest
            fields[key] = " ".join([value, *tokens[index + 1:]])
            break
        else:
            fields[key] = value
    return AgentEvent(kind, fields, tuple(bare), None, body)


def agent_events(text: str) -> list[AgentEvent]:
    """All agent events in a console text, in order."""
    events = []
    for line in text.splitlines():
        event = parse_agent_line(line)
        if event is not None:
            events.append(event)
    return events


def wait_for_event(serial_log: Path, kind: str, timeout_s: float, *,
                   poll_s: float = 0.2) -> AgentEvent:
    """Poll ``serial_log`` until an agent event of ``kind`` appears; return it.

    Pass a timeout already scaled for the accelerator (AccelDecision.scaled).
    """
    deadline = time.monotonic() + timeout_s
    text = ""
    while True:
        text = serial_log.read_text(errors="replace") if serial_log.exists() else ""
        for event in agent_events(text):
            if event.kind == kind:
                return event
        if time.monotonic() >= deadline:
            tail = "\n".join(text.splitlines()[-15:]) or "(console empty)"
            raise ConsoleTimeout(
                f"no '{AGENT_PREFIX}{kind}' line in {serial_log} within {timeout_s:.0f} s; "
                f"console tail:\n{tail}"
            )
        time.sleep(poll_s)
