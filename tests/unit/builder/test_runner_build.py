"""The builder on fakes: plan items built in order, unwound in reverse, every stop error
reported (never swallowed), the lab torn down whatever raised, and run() never raising.

Every component kind is passed in (:class:`harness.builder.kinds.Kinds`), so the real
runner code runs here without root: only the lab, the Control Plane, the components and
the machine driver are recording fakes.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.builder import runner as runner_module
from harness.builder.kinds import Kinds, ProxyStart
from harness.builder.runner import ScenarioRunner
from harness.errors import ComponentError
from harness.plan import plan
from harness.scenario.drivers import MachineProgress
from harness.scenario.loader import parse_scenario
from harness.site_build import BuiltSite

pytestmark = pytest.mark.unit

SCENARIO = """
name: fake
segments:
  - {name: lan}
  - {name: far, relay: {upstream: lan}, snooping: {trusted: []}}
site_dhcp: [{segment: lan}]
proxies: [{name: bp1, segments: [lan], clusters: [c1]}]
clusters: [{name: c1}]
machines: [{name: n, segment: far, cluster: c1}]
steps: [{at: 0, action: power_on, machines: [n]}]
expect:
  rules: []
  machines: [{name: n, state: Ready}]
"""


class Fake:
    """A component that logs its life into ``log``; ``fail`` names the call that raises."""

    def __init__(self, log: list[str], name: str, fail: str = "") -> None:
        self.log, self.name, self.fail = log, name, fail

    def _do(self, what: str) -> None:
        self.log.append(f"{what} {self.name}")
        if what == self.fail:
            raise ComponentError(f"{self.name} would not {what}")

    def start(self) -> None:
        self._do("start")

    def wait_ready(self) -> None:
        self._do("ready")

    def stop(self) -> None:
        self._do("stop")

    def close(self) -> None:
        self._do("close")


class FakeLab(Fake):
    """The lab a plan needs, with addresses but no namespaces."""

    def __init__(self, log: list[str], topology: Any) -> None:
        super().__init__(log, "lab")
        self.id = "flfake"
        self.links = {(h.name, link.segment): SimpleNamespace(
            address=ipaddress.ip_interface(f"10.0.{i}.{j + 2}/24"))
            for j, h in enumerate(topology.hosts) for i, link in enumerate(h.links)}
        self.subnets = {s.name: f"net-{s.name}" for s in topology.segments}
        self.pcaps: dict[str, Path] = {}
        self.temp_dir = Path("/nonexistent")

    def build(self) -> None:
        self._do("build")

    def teardown(self) -> None:
        self._do("teardown")

    def address(self, host: str, segment: str) -> str:
        return str(self.links[(host, segment)].address.ip)

    def dhcp_pool(self, segment: str) -> tuple[str, str]:
        return "10.9.0.100", "10.9.0.200"

    def add_route(self, host: str, destination: str, via: str) -> None:
        self.log.append(f"route {host} {destination}")

    def artifacts(self) -> list[Path]:
        return []

    def capture_stats(self, segment: str) -> dict[str, int]:
        return {}


class FakeAnswer:
    """One item of a client answer: the client gives pydantic models, the evidence dumps them."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return self.doc


class FakeApi:
    """The Control Plane's admin API: records the seed, answers the final read."""

    def __init__(self, log: list[str], cp_state: dict[str, Any]) -> None:
        self.log, self.cp_state = log, cp_state

    def __getattr__(self, name: str) -> Any:
        if name in self.cp_state:
            return lambda: [FakeAnswer(doc) for doc in self.cp_state[name]]

        def record(*args: Any, **kw: Any) -> str:
            self.log.append(f"api {name}")
            return f"token-{args[0]}"
        return record


class FakeCp(Fake):
    def __init__(self, log: list[str], fail: str, cp_state: dict[str, Any]) -> None:
        super().__init__(log, "cp", fail)
        self.api = FakeApi(log, cp_state)
        self.ca_cert = None
        self.process = SimpleNamespace(running=lambda: True, log_path=None)

    def url(self, segment: str) -> str:
        return f"http://cp.{segment}:8000"


class FakeDriver(Fake):
    kind = "fake"

    def __init__(self, log: list[str], fail: str) -> None:
        super().__init__(log, "machines", fail)
        self.on: list[str] = []

    def add(self, plans: list[Any]) -> None:
        self._do("add")

    def power_on(self, keys: list[str], at: float) -> None:
        self.log.append(f"power_on {','.join(keys)}")
        self.on += keys

    def power_off(self, keys: list[str]) -> None:
        self.log.append(f"power_off {','.join(keys)}")

    def progress(self) -> dict[str, MachineProgress]:
        return {k: MachineProgress(k, phase="done", finished=True) for k in self.on}


def fake_run(fail: dict[str, str] | None = None,
             cp_state: dict[str, Any] | None = None) -> tuple[ScenarioRunner, list[str]]:
    """A runner whose every kind is a fake; ``fail`` maps a component name to the call
    (start, ready, stop, close, add, build, teardown) that raises."""
    fail = fail or {}
    log: list[str] = []
    state = cp_state if cp_state is not None else {
        "machines": [], "clusters": [], "conflicts": [], "events": []}
    kinds = Kinds(
        lab=lambda topology, _reports: _failing(FakeLab(log, topology), fail.get("lab", "")),
        control_plane=lambda lab, site, built, which=None: FakeCp(log, fail.get("cp", ""), state),
        whole_site=lambda stack, lab, site: BuiltSite(),
        site_dhcp=lambda lab, server, built: Fake(log, server.name, fail.get(server.name, "")),
        relay=lambda lab, relay: Fake(log, relay.name, fail.get(relay.name, "")),
        snooping=lambda lab, segment, trusted: log.append(f"snooping {segment}"),
        proxies={"container": lambda s: Fake(log, f"{s.proxy.kind}-{s.proxy.name}",
                                             fail.get(s.proxy.name, ""))},
        driver=lambda lab, scenario: FakeDriver(log, fail.get("machines", "")),
        artifacts=lambda profile: (b"kernel", b"initrd"))
    scenario = parse_scenario(SCENARIO)
    return ScenarioRunner(scenario, kinds=kinds, reports_dir=Path("unused")), log


def _failing(lab: FakeLab, what: str) -> FakeLab:
    lab.fail = what
    return lab


def ready(mac: str) -> dict[str, Any]:
    return {"machines": [{"mac": mac, "state": "Ready", "reasons": []}], "clusters": [],
            "conflicts": [], "events": []}


def test_items_are_built_in_plan_order_and_unwound_in_reverse() -> None:
    mac = plan(parse_scenario(SCENARIO)).machines[0].mac
    runner, log = fake_run(cp_state=ready(mac))
    result = runner.run()
    assert result.error is None, result.error
    assert log == [
        "build lab", "start cp", "ready cp",
        "api create_cluster", "api upload_artifact", "api upload_artifact",
        "api create_profile", "api create_machine", "api register_proxy",
        "start site-dhcp0", "ready site-dhcp0",
        "route dhcp0 net-far", "route bp1 net-far", "start relay-far", "ready relay-far",
        "snooping far",
        "start container-bp1", "ready container-bp1",
        "add machines", "power_on n",
        # teardown: the reverse of the build, the lab last
        "close machines", "stop container-bp1", "stop relay-far", "stop site-dhcp0",
        "close cp", "teardown lab",
    ]
    assert [e.verdict for e in result.expectations] == ["pass"]
    assert [p[0] for p in result.phases] == [
        "build lab", "control plane", "site", "machines", "teardown", "judge"]
    assert result.observed is not None and result.observed.powered_at.keys() == {"n"}


def test_a_stop_that_raises_is_reported_and_the_rest_still_stops() -> None:
    runner, log = fake_run({"relay-far": "stop"})
    result = runner.run()
    assert result.error is not None
    assert "teardown: relay-far: ComponentError: relay-far would not stop" in result.error
    assert log[-4:] == ["stop relay-far", "stop site-dhcp0", "close cp", "teardown lab"]
    assert any(e.kind == "run" and e.verdict == "fail" for e in result.expectations)
    assert result.verdict == "fail"


def test_control_plane_close_raising_still_tears_the_lab_down() -> None:
    runner, log = fake_run({"cp": "close"})
    result = runner.run()
    assert log[-2:] == ["close cp", "teardown lab"]
    assert result.error == "teardown: control plane: ComponentError: cp would not close"


def test_a_teardown_error_is_reported_beside_the_build_error() -> None:
    runner, _ = fake_run({"relay-far": "ready", "site-dhcp0": "stop"})
    assert runner.run().error == ("ComponentError: relay-far would not ready; teardown: "
                                  "site-dhcp0: ComponentError: site-dhcp0 would not stop")


def test_several_teardown_errors_are_all_reported() -> None:
    runner, _ = fake_run({"bp1": "stop", "lab": "teardown"})
    result = runner.run()
    assert result.error is not None
    assert "container-bp1: ComponentError" in result.error
    assert "lab: ComponentError: lab would not teardown" in result.error


@pytest.mark.parametrize(("fail", "reason"), [
    ({"lab": "build"}, "ComponentError: lab would not build"),
    ({"cp": "ready"}, "ComponentError: cp would not ready"),
    ({"relay-far": "start"}, "ComponentError: relay-far would not start"),
    ({"machines": "add"}, "ComponentError: machines would not add"),
])
def test_a_failed_build_becomes_the_result_and_everything_started_stops(
        fail: dict[str, str], reason: str) -> None:
    runner, log = fake_run(fail)
    result = runner.run()
    assert result.error == reason
    assert result.verdict == "fail"
    started = [e.split(" ", 1)[1] for e in log if e.startswith(("start ", "add "))]
    stopped = [e.split(" ", 1)[1] for e in log if e.startswith(("stop ", "close "))]
    assert sorted(stopped) == sorted(started)  # a start that failed is stopped too
    assert log[-1] == "teardown lab"   # registered before build: a half-built lab goes too


def test_run_never_raises_not_even_for_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    runner, log = fake_run()
    runner.kinds = dataclasses.replace(runner.kinds, snooping=lambda *a: 1 / 0)
    result = runner.run()
    assert result.error == "unexpected ZeroDivisionError: division by zero"
    assert log[-1] == "teardown lab"

    def broken_judge(*args: Any) -> Any:
        raise KeyError("judge bug")

    runner, log = fake_run()
    monkeypatch.setattr(runner_module, "judge", broken_judge)
    result = runner.run()
    assert result.error == "judge: unexpected KeyError: 'judge bug'"
    assert log[-1] == "teardown lab"


def test_the_planned_kind_picks_the_factory() -> None:
    runner, _ = fake_run()
    made: list[ProxyStart] = []
    runner.kinds.proxies["container"] = lambda s: made.append(s) or Fake([], "x")  # type: ignore[func-returns-value,index]
    result = runner.run()
    assert [(s.proxy.name, s.token, s.cp_url) for s in made] == [
        ("bp1", "token-bp1", "http://cp.lan:8000")]
    assert result.error is None
