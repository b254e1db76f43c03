"""What a run observed that the judge reads besides its packet captures.

The builder fills an :class:`Observed` while the lab still runs (the Control Plane's
final state, each machine copy's progress, when each was powered on, the lab's
addresses, capture drop counts, the whole site's facts). It is saved in run.json under
``observed``, so ``flexlab report --rejudge`` can judge the run again with today's rules
without the lab: the plan is made again from ``scenario``, the rules run again on the
saved pcaps. Timelines are not repeated here: they are saved with the machines.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from harness.rules.site_facts import SiteFacts
from harness.scenario.drivers import MachineProgress, TimelineEvent
from harness.scenario.model import Scenario


@dataclass
class Observed:
    """The judge's evidence of one run, besides its pcaps (see the module docstring)."""

    scenario: dict[str, Any]                # as written (see scenario_data)
    addresses: dict[str, str] = field(default_factory=dict)   # "host@segment" -> IPv4
    cp_state: dict[str, Any] = field(default_factory=dict)    # machines, clusters, ...
    progress: dict[str, MachineProgress] = field(default_factory=dict)  # per copy key
    powered_at: dict[str, float] = field(default_factory=dict)  # copy key -> last power-on
    capture_stats: dict[str, dict[str, int]] = field(default_factory=dict)  # per segment
    driver: str = "none"
    run_error: str | None = None            # the build/boot/teardown error, before judging
    site: SiteFacts | None = None           # whole-site facts (WAN, DNS, NTP), if any
    # per snooping segment, per lab host: DHCP server replies its switch port dropped
    switch_drops: dict[str, dict[str, int]] = field(default_factory=dict)

    def address_of(self, host: str, segment: str) -> str:
        """The built lab's address of ``host`` on ``segment`` (the plan's HostOn resolver)."""
        return self.addresses[address_key(host, segment)]


def scenario_data(scenario: Scenario) -> dict[str, Any]:
    """The scenario as saved for re-judging: only what its file (or code) set, as
    written, so a later model whose optional fields or step shapes changed still loads it."""
    return scenario.model_dump(mode="json", by_alias=True, exclude_unset=True)


def address_key(host: str, segment: str) -> str:
    """How :attr:`Observed.addresses` names a link."""
    return f"{host}@{segment}"


def to_plain(observed: Observed) -> dict[str, Any]:
    """JSON-ready data (progress without its timeline: that is saved with the machines)."""
    return {
        "scenario": observed.scenario,
        "addresses": dict(observed.addresses),
        "cp_state": observed.cp_state,
        "progress": {key: {"phase": p.phase, "finished": p.finished, "error": p.error,
                           "answered_by": list(p.answered_by), "console": p.console}
                     for key, p in observed.progress.items()},
        "powered_at": dict(observed.powered_at),
        "capture_stats": observed.capture_stats,
        "driver": observed.driver,
        "run_error": observed.run_error,
        "site": None if observed.site is None else dataclasses.asdict(observed.site),
        "switch_drops": observed.switch_drops,
    }


def from_plain(data: dict[str, Any],
               timelines: dict[str, list[TimelineEvent]] | None = None) -> Observed:
    """The inverse of :func:`to_plain`; ``timelines`` (copy key -> events, from the saved
    machines) go back into each copy's progress. KeyError/TypeError/ValueError on bad data."""
    timelines = timelines or {}
    progress = {
        str(key): MachineProgress(
            key=str(key), phase=str(p.get("phase", "off")), finished=bool(p.get("finished")),
            error=p.get("error"), answered_by=[str(a) for a in p.get("answered_by", [])],
            timeline=list(timelines.get(str(key), [])), console=p.get("console"))
        for key, p in (data.get("progress") or {}).items()}
    site = data.get("site")
    return Observed(
        scenario=dict(data["scenario"]),
        addresses={str(k): str(v) for k, v in (data.get("addresses") or {}).items()},
        cp_state=dict(data.get("cp_state") or {}),
        progress=progress,
        powered_at={str(k): float(v) for k, v in (data.get("powered_at") or {}).items()},
        capture_stats={str(s): {str(k): int(v) for k, v in st.items()}
                       for s, st in (data.get("capture_stats") or {}).items()},
        driver=str(data.get("driver", "none")),
        run_error=data.get("run_error"),
        site=None if site is None else rebuild(SiteFacts, site),
        switch_drops={str(seg): {str(h): int(n) for h, n in hosts.items()}
                      for seg, hosts in (data.get("switch_drops") or {}).items()},
    )


def rebuild(cls: type[Any], data: Any) -> Any:
    """A frozen dataclass tree (such as :class:`SiteFacts`) from ``dataclasses.asdict``
    output, led by the type hints: nested dataclasses, ``tuple[X, ...]``, ``X | None``,
    ``dict[str, X]`` and plain values."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _value(hints[f.name], data[f.name])
                  for f in dataclasses.fields(cls) if f.name in data})


def _value(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _value(next(a for a in args if a is not type(None)), value)
    if origin is tuple:
        return tuple(_value(args[0], v) for v in value)
    if origin is dict:
        return {k: _value(args[1], v) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return rebuild(typing.cast(type[Any], hint), value)
    return value
