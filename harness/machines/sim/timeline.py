"""A machine's own record of what it did: plain, JSON-serialisable data a report can draw."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EmulatorEvent:
    """One thing a machine did or saw.

    ``t`` is wall-clock seconds since the machine was first powered on (a reset's
    events follow on); ``kind`` is one of ``state``, ``sent``, ``received``,
    ``chosen``, ``file``, ``error``, ``power`` (a power cut);
    ``detail`` holds the specifics (message type, peer, sizes, reasons).
    """

    t: float
    kind: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    """The ordered events of one machine."""

    mac: str
    profile: str
    events: list[EmulatorEvent] = field(default_factory=list)

    def add(self, t: float, kind: str, summary: str, /, **detail: Any) -> None:
        """Append an event."""
        self.events.append(EmulatorEvent(round(t, 6), kind, summary, detail))

    def states(self) -> list[str]:
        """The states the machine went through, in order."""
        return [e.summary for e in self.events if e.kind == "state"]

    def of_kind(self, kind: str) -> list[EmulatorEvent]:
        """Events of one kind."""
        return [e for e in self.events if e.kind == kind]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``json.dumps`` works on it).

        Built field by field: ``dataclasses.asdict`` deep-copies every detail value, and
        over a 1,000-machine storm's timelines that was seconds of the fleet's one loop.
        The details are JSON values nobody changes once recorded, so a copy of each
        event's detail dict is enough."""
        return {"mac": self.mac, "profile": self.profile,
                "events": [{"t": e.t, "kind": e.kind, "summary": e.summary,
                            "detail": dict(e.detail)} for e in self.events]}

    def dumps(self) -> str:
        """The timeline as a JSON string."""
        return json.dumps(self.to_json())
