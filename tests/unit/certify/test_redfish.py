"""The Redfish power-on client against a small loopback BMC stand-in: which system it picks,
what it sends, and that it refuses to guess among several systems."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from json_reply import send_json

from harness.certify.errors import CertifyError
from harness.certify.redfish import power_on

pytestmark = pytest.mark.unit

AUTH = "Basic " + base64.b64encode(b"admin:secret").decode()


class Bmc:
    """State of the stand-in BMC and every request it received."""

    def __init__(self, systems: list[str], power: str = "Off", patch_status: int = 200) -> None:
        self.systems = systems
        self.power = power
        self.patch_status = patch_status
        self.calls: list[tuple[str, str, Any]] = []


def _handler(bmc: Bmc) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, doc: Any = None) -> None:
            send_json(self, status, doc or {})

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length", 0))
            return json.loads(self.rfile.read(length)) if length else None

        def _authorised(self) -> bool:
            if self.headers.get("Authorization") != AUTH:
                self._answer(401)
                return False
            return True

        def do_GET(self) -> None:
            bmc.calls.append(("GET", self.path, None))
            if not self._authorised():
                return
            if self.path == "/redfish/v1/Systems":
                self._answer(200, {"Members": [{"@odata.id": s} for s in bmc.systems]})
            elif self.path in bmc.systems:
                self._answer(200, {"PowerState": bmc.power, "Actions": {
                    "#ComputerSystem.Reset": {"target": self.path + "/Actions/Reset.Do"}}})
            else:
                self._answer(404)

        def do_PATCH(self) -> None:
            bmc.calls.append(("PATCH", self.path, self._body()))
            if self._authorised():
                self._answer(bmc.patch_status)

        def do_POST(self) -> None:
            body = self._body()
            bmc.calls.append(("POST", self.path, body))
            if self._authorised():
                bmc.power = "On"
                self._answer(204)

    return Handler


@pytest.fixture
def serve(loopback_http: Callable[..., str]) -> Callable[[Bmc], str]:
    def start(bmc: Bmc) -> str:
        return loopback_http(_handler(bmc))

    return start


def test_the_only_system_is_set_to_pxe_once_and_powered_on(serve: Any) -> None:
    bmc = Bmc(["/redfish/v1/Systems/1"])
    done = power_on(serve(bmc) + "/redfish/v1", "admin", "secret")
    assert (done.system, done.power_state, done.reset_type) == (
        "/redfish/v1/Systems/1", "Off", "On")
    assert ("PATCH", "/redfish/v1/Systems/1", {"Boot": {
        "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}) in bmc.calls
    assert bmc.calls[-1] == ("POST", "/redfish/v1/Systems/1/Actions/Reset.Do",
                             {"ResetType": "On"})
    assert bmc.power == "On" and done.warnings == []


def test_a_machine_already_on_is_restarted_and_a_refused_override_is_a_warning(
        serve: Any) -> None:
    bmc = Bmc(["/redfish/v1/Systems/7"], power="On", patch_status=400)
    done = power_on(serve(bmc) + "/redfish/v1/Systems/7", "admin", "secret")
    assert done.reset_type == "ForceRestart"
    assert done.warnings and "override refused (400)" in done.warnings[0]
    assert ("GET", "/redfish/v1/Systems", None) not in bmc.calls  # named: no listing


def test_several_systems_are_refused_not_guessed(serve: Any) -> None:
    bmc = Bmc(["/redfish/v1/Systems/1", "/redfish/v1/Systems/2"])
    with pytest.raises(CertifyError, match="manages 2 systems"):
        power_on(serve(bmc), "admin", "secret")
    assert not [c for c in bmc.calls if c[0] in ("POST", "PATCH")]


def test_wrong_credentials_say_so(serve: Any) -> None:
    bmc = Bmc(["/redfish/v1/Systems/1"])
    with pytest.raises(CertifyError, match="refused the credentials"):
        power_on(serve(bmc), "admin", "wrong")
    with pytest.raises(CertifyError, match="want https://BMC"):
        power_on("ftp://bmc", "admin", "secret")
