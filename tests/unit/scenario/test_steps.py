"""Steps are typed per action; every problem in a file is reported at once, at its line."""

from __future__ import annotations

from typing import Any

import pytest

from harness.scenario import ScenarioError, parse_scenario
from harness.scenario.model import FaultStep, LinkStep, PowerStep, ProxyStep
from harness.scenario.schema import scenario_schema

pytestmark = pytest.mark.unit

HEAD = """\
name: steps
segments: [{name: lan}]
site_dhcp: [{segment: lan}]
proxies: [{name: bp1, segments: [lan], clusters: [alpha]}]
clusters: [{name: alpha}]
machines: [{name: a, segment: lan, cluster: alpha}]
steps:
"""  # steps start on line 8


def problems(steps: str, tail: str = "") -> list[tuple[int, str]]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(HEAD + steps + tail, "f.yaml")
    lines = str(info.value).splitlines()
    assert all(line.startswith("f.yaml:") for line in lines), lines
    return [(p.line, p.message) for p in info.value.problems]


def test_each_action_parses_to_its_own_type() -> None:
    sc = parse_scenario(HEAD + """\
  - {at: 0, action: power_on, machines: [a]}
  - {at: 1, action: set_fault, fault: {endpoint: boot, down: true}}
  - {at: 2, action: stop_proxy, proxy: bp1}
  - {at: 3, action: cut_link, host: bp1, segment: lan}
""")
    assert [type(s) for s in sc.steps] == [PowerStep, FaultStep, ProxyStep, LinkStep]


@pytest.mark.parametrize(("step", "needs"), [
    ("{at: 0, action: set_fault}", "set_fault needs fault:"),
    ("{at: 0, action: start_proxy}", "start_proxy needs proxy:"),
    ("{at: 0, action: power_on}", "power_on needs machines:"),
    ("{at: 0, action: cut_link, host: bp1}", "cut_link needs segment:"),
    ("{at: 0, action: netem, segment: lan, loss_pct: 5}", "netem needs host:"),
])
def test_a_step_without_what_its_action_needs_is_an_error(step: str, needs: str) -> None:
    assert problems(f"  - {step}\n") == [(8, f"step 1: {needs}")]


def test_a_field_another_action_takes_is_named_with_what_this_one_takes() -> None:
    [(line, message)] = problems("  - {at: 0, action: power_on, machines: [a], proxy: bp1}\n")
    assert line == 8
    assert message == ("step 1: power_on does not take 'proxy' (it takes: at, action, "
                       "machines)")


def test_an_unknown_action_lists_the_known_ones() -> None:
    [(line, message)] = problems("  - {at: 0, action: explode}\n")
    assert line == 8 and "unknown action 'explode'" in message and "power_on" in message


@pytest.mark.parametrize(("step", "message"), [
    ("{at: 0, action: stop_proxy, proxy: bp9}", "step 1 names unknown proxy 'bp9'"),
    ("{at: 0, action: reset, machines: [zz]}", "step 1 names unknown machine 'zz'"),
    ("{at: 0, action: cut_link, host: bp1, segment: wan}",
     "step 1 names unknown segment 'wan'"),
    ("{at: 0, action: cut_link, host: ghost, segment: lan}",
     "step 1 names unknown host 'ghost' (a proxy, a machine, 'site-dhcp' or 'cp')"),
])
def test_step_references_are_checked_against_the_file(step: str, message: str) -> None:
    assert problems(f"  - {step}\n") == [(8, message)]


def test_a_link_step_on_a_segment_the_host_is_not_on_is_an_error() -> None:
    text = HEAD.replace("segments: [{name: lan}]", "segments: [{name: lan}, {name: b}]")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text + "  - {at: 0, action: cut_link, host: a, segment: b}\n", "f.yaml")
    assert str(info.value) == ("f.yaml:8: step 1: machine 'a' has no link on segment 'b' "
                               "(it is on 'lan')")


def test_every_error_in_the_file_is_reported_at_once_in_file_order() -> None:
    found = problems("""\
  - {at: 0, action: set_fault}
  - {at: 1, action: power_on, machines: [nobody]}
  - {at: 2, action: stop_proxy, proxy: bp9}
""", """\
expect:
  rules: [NOPE-1]
  machines: [{name: a, state: Redy}]
""")
    assert [line for line, _ in found] == [8, 9, 10, 12, 13]
    assert "set_fault needs fault:" in found[0][1]
    assert "unknown machine 'nobody'" in found[1][1]
    assert "unknown proxy 'bp9'" in found[2][1]
    assert "unknown rule id 'NOPE-1'" in found[3][1]
    assert "Redy" in found[4][1] or "Ready" in found[4][1]


def test_a_reference_to_a_declaration_with_its_own_error_is_not_reported_twice() -> None:
    text = HEAD.replace("{name: a, segment: lan, cluster: alpha}",
                        "{name: a, segment: lan, cluster: alpha, colour: red}")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text + "  - {at: 0, action: power_on, machines: [a]}\n", "f.yaml")
    assert [p.line for p in info.value.problems] == [6]
    assert "unknown key 'colour'" in info.value.problems[0].message



def _problems(text: str) -> list[tuple[int, str]]:
    """The (line, message) of every problem parsing ``text`` reports (it must fail)."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "f.yaml")
    return [(p.line, p.message) for p in info.value.problems]

def test_a_declaration_with_a_shape_error_still_has_its_references_checked() -> None:
    text = HEAD.replace("{name: a, segment: lan, cluster: alpha}",
                        "{name: a, segment: wan, cluster: beta, firmware: floppy}")
    found = _problems(text + "  - {at: 0, action: power_on, machines: [a]}\n")
    assert [line for line, _ in found] == [6, 6, 6], found
    assert "unknown firmware 'floppy'" in found[0][1]
    assert "machine 'a' is on segment 'wan', which does not exist" in found[1][1]
    assert "machine 'a' joins unknown cluster 'beta'" in found[2][1]


def test_a_step_with_a_shape_error_still_has_its_references_checked() -> None:
    found = problems("  - {at: 0, action: power_on, machines: [a]}\n"
                     "  - {at: 1, action: netem, host: ghost, segment: lan, loss_pct: 500}\n")
    assert [line for line, _ in found] == [9, 9], found
    assert found[0][1].startswith("step 2: loss_pct: "), found
    assert found[1][1].startswith("step 2 names unknown host 'ghost'"), found


def test_a_problem_inside_a_rebuilt_item_points_at_its_own_line() -> None:
    text = HEAD.replace("proxies: [{name: bp1, segments: [lan], clusters: [alpha]}]",
                        "proxies:\n  - name: bp1\n    kind: vm\n    segments:\n"
                        "      - LAN\n      - wan")
    found = _problems(text + "  - {at: 0, action: power_on, machines: [a]}\n")
    assert [line for line, _ in found] == [6, 8, 9], found
    assert found[2][1] == "proxy 'bp1' on unknown segment 'wan'"


def test_a_steps_field_error_is_numbered_like_every_other_step_problem() -> None:
    found = problems("  - {at: 0, action: power_on, machines: [a]}\n"
                     "  - {at: 1, action: stop_proxy, proxy: BP1}\n")
    assert len(found) == 1 and found[0][0] == 9, found
    assert found[0][1].startswith("step 2: proxy: String should match pattern"), found


def test_a_duplicate_key_does_not_hide_the_other_problems() -> None:
    text = HEAD.replace("{name: a, segment: lan, cluster: alpha}",
                        "{name: a, segment: lan, segment: lan, cluster: alpha}")
    found = _problems(text + "  - {at: 0, action: power_on, machines: [zz]}\n")
    assert found == [(6, "duplicate key 'segment'"),
                     (8, "step 1 names unknown machine 'zz'")], found


def test_a_conflict_is_between_two_different_proxies() -> None:
    found = problems("  - {at: 0, action: power_on, machines: [a]}\n",
                     "expect: {conflicts: [{between: [bp1, bp1]}]}\n")
    assert found == [(9, "conflict names proxy 'bp1' twice: a conflict is between two "
                          "different proxies")], found


def test_a_cluster_deadline_needs_the_cluster_to_become_ready() -> None:
    found = problems("  - {at: 0, action: power_on, machines: [a]}\n",
                     "expect: {clusters: [{name: alpha, ready: false, within: 30}]}\n")
    assert len(found) == 1 and found[0][0] == 9, found
    assert "within needs ready: true" in found[0][1], found


@pytest.mark.parametrize(("expect", "message"), [
    ("{violations: [MUST]}", "violations lists rule ids; 'MUST' is not one"),
    ("{rules: [SITE-1], violations: [SITE-1]}",
     "SITE-1 is both a rule that must hold and an expected violation"),
    ("{violations: [SITE-9]}", "unknown rule id 'SITE-9'"),
])
def test_rule_ids_in_expectations_are_checked(expect: str, message: str) -> None:
    found = problems("  - {at: 0, action: power_on, machines: [a]}\n", f"expect: {expect}\n")
    assert len(found) == 1 and found[0][0] == 9 and message in found[0][1], found


def test_the_schema_shows_each_actions_fields() -> None:
    schema = scenario_schema()
    defs: dict[str, Any] = schema["$defs"]
    assert set(defs["FaultStep"]["required"]) >= {"action", "at", "fault"}
    assert set(defs["ProxyStep"]["required"]) >= {"action", "at", "proxy"}
    assert "machines" not in defs["ProxyStep"]["properties"]
    items = schema["properties"]["steps"]["items"]
    assert items["discriminator"]["propertyName"] == "action"
    assert items["discriminator"]["mapping"]["set_fault"].endswith("/FaultStep")


class Recorder:
    """Stands in for the lab, the machine driver and the Control Plane (and its API):
    every call is recorded as (name, args)."""

    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.calls = calls
        self.api = self

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any, **kw: Any) -> None:
            self.calls.append((name, args + tuple(sorted(kw.items()))))
        return record


def test_the_runner_plays_each_typed_step() -> None:
    from harness.builder.runner import ScenarioRunner

    sc = parse_scenario(HEAD + """\
  - {at: 0, action: power_on, machines: [a]}
  - {at: 1, action: reset, machines: [a]}
  - {at: 2, action: power_off, machines: [a]}
  - {at: 3, action: set_fault, fault: {endpoint: boot, down: true}}
  - {at: 4, action: clear_faults}
  - {at: 5, action: stop_proxy, proxy: bp1}
  - {at: 6, action: cut_link, host: a, segment: lan}
  - {at: 7, action: netem, host: bp1, segment: lan, loss_pct: 5}
  - {at: 8, action: stop_control_plane}
""")
    runner = ScenarioRunner(sc)
    calls: list[tuple[str, tuple[Any, ...]]] = []
    fake = Recorder(calls)
    runner.lab = runner.driver = runner.cp = fake  # type: ignore[assignment]
    runner.proxies = {"bp1": fake}  # type: ignore[dict-item]
    for step in runner.plan.steps:
        runner._play(step, step.at)
    attach = runner.plan.machine_host("lan")
    assert [(name, args) for name, args in calls] == [
        ("power_on", (["a"], 0)),
        ("power_off", (["a"],)), ("power_on", (["a"], 1)),
        ("power_off", (["a"],)),
        ("set_fault", ("boot", ("down", True), ("error_rate", 0.0), ("latency_ms", 0),
                       ("wrong_answer", False))),
        ("clear_faults", ()),
        ("stop", ()),
        ("set_link", (attach, "lan", False)),
        ("impair", ("bp1", "lan", 0, 5.0)),
        ("stop", ()),
    ]
    assert set(runner.power_on_at) == {"a"}
