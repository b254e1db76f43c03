"""The client returns the API's models, and refuses an answer that does not fit them.

A Control Plane that lies in shape (a field missing, a wrong type, a list with one bad
item) must give the caller a BadAnswer naming the model and the field, not a dict that
breaks three calls later. The server here is a real HTTP server on loopback answering
what each test tells it to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from json_reply import send_json

from controlplane.client import BadAnswer, ControlPlaneClient
from controlplane.errors import ControlPlaneError
from controlplane.models import Event, MachineOut

pytestmark = pytest.mark.unit

MACHINE = {"mac": "52:54:00:00:00:01", "cluster": "alpha", "role": "worker",
           "hostname": "node1", "profile": "default", "state": "Ready", "reasons": [],
           "facts": None, "updated_at": 1.5}
EVENT = {"seq": 1, "time": 2.0, "kind": "node.ready", "subject": "52:54:00:00:00:01",
         "data": {}}


class _Answers(BaseHTTPRequestHandler):
    answers: dict[str, Any] = {}

    def do_GET(self) -> None:
        send_json(self, 200, self.answers[self.path.split("?")[0]])

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[ControlPlaneClient, dict[str, Any]]]:
    answers: dict[str, Any] = {}
    handler = type("Handler", (_Answers,), {"answers": answers})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with ControlPlaneClient(f"http://127.0.0.1:{httpd.server_port}", "t") as client:
            yield client, answers
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_fitting_answer_comes_back_as_the_model(server) -> None:
    client, answers = server
    answers["/api/v1/machines/52:54:00:00:00:01"] = MACHINE
    answers["/api/v1/events"] = [EVENT]
    machine = client.get_machine("52:54:00:00:00:01")
    assert isinstance(machine, MachineOut) and machine.state == "Ready"
    assert client.events() == [Event(**EVENT)]


@pytest.mark.parametrize(("path", "call", "answer", "names"), [
    ("/api/v1/machines/m", lambda c: c.get_machine("m"), {**MACHINE, "state": "Sleeping"},
     ("MachineOut", "state")),
    ("/api/v1/machines/m", lambda c: c.get_machine("m"),
     {k: v for k, v in MACHINE.items() if k != "hostname"}, ("MachineOut", "hostname")),
    ("/api/v1/events", lambda c: c.events(), [EVENT, {**EVENT, "seq": "two"}],
     ("list of Event", "1.seq")),
    ("/api/v1/events", lambda c: c.events(), {"not": "a list"}, ("list of Event", "body")),
    ("/api/v1/time", lambda c: c.time(), {"unix": "noon"}, ("TimeOut", "unix")),
])
def test_an_answer_that_does_not_fit_is_a_bad_answer(server, path, call, answer,
                                                     names) -> None:
    client, answers = server
    answers[path] = answer
    with pytest.raises(BadAnswer) as info:
        call(client)
    assert isinstance(info.value, ControlPlaneError)
    for name in names:
        assert name in str(info.value), str(info.value)
