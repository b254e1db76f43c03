"""Fault injection switched at run time, scoped per route, observable by clients."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from cp_helpers import site

from controlplane.client import ApiError, ControlPlaneClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit


def test_down_is_scoped_to_one_route(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    admin.set_fault("time", down=True)
    answer = httpx.get(f"{cp.url}/api/v1/time")
    assert answer.status_code == 503 and "DELETE /api/v1/faults" in answer.json()["detail"]
    assert httpx.get(f"{cp.url}/healthz").status_code == 200
    admin.clear_faults()
    assert httpx.get(f"{cp.url}/api/v1/time").status_code == 200


def test_latency(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    admin.set_fault("time", latency_ms=400)
    started = time.monotonic()
    answer = httpx.get(f"{cp.url}/api/v1/time")
    assert time.monotonic() - started >= 0.4
    assert answer.status_code == 200 and answer.headers["x-flexlab-fault"] == "latency=400ms"


def test_error_rate_one_always_fails_and_zero_removes(cp: ControlPlaneProcess,
                                                      admin: ControlPlaneClient) -> None:
    admin.set_fault("healthz", error_rate=1.0)
    assert [httpx.get(f"{cp.url}/healthz").status_code for _ in range(5)] == [500] * 5
    faults = admin.set_fault("healthz")
    assert faults.faults == []
    assert httpx.get(f"{cp.url}/healthz").status_code == 200


def test_half_error_rate_fails_some(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    admin.set_fault("healthz", error_rate=0.5)
    with httpx.Client(base_url=cp.url) as http:
        codes = {http.get("/healthz").status_code for _ in range(60)}
    assert codes == {200, 500}


def test_wrong_answer_lies_plausibly(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    s = site(admin)
    with admin.with_token(s["proxy_token"]) as proxy:
        admin.set_fault("assignments", wrong_answer=True)
        _, doc, _ = proxy.assignments(s["proxy"])
        assert doc is not None and doc["assignments"][0]["mac"] != s["macs"][0]
        admin.set_fault("time", wrong_answer=True)
        assert abs(proxy.time() - time.time()) > 3000
        admin.clear_faults()
        _, doc, _ = proxy.assignments(s["proxy"])
        assert doc is not None and doc["assignments"][0]["mac"] == s["macs"][0]


def test_wildcard_spares_the_fault_api(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    admin.set_fault("*", down=True)
    assert httpx.get(f"{cp.url}/healthz").status_code == 503
    with pytest.raises(ApiError) as info:
        admin.events()
    assert info.value.status == 503
    admin.clear_faults()
    kinds = [e.kind for e in admin.events()]
    assert "fault.set" in kinds and "fault.cleared" in kinds


def test_unknown_route_name_is_422(admin: ControlPlaneClient) -> None:
    with pytest.raises(ApiError) as info:
        admin.set_fault("no-such-route", down=True)
    assert info.value.status == 422 and "body.endpoint" in info.value.body["detail"]


def test_request_log_names_route_and_fault_status(cp: ControlPlaneProcess,
                                                  admin: ControlPlaneClient) -> None:
    admin.set_fault("time", down=True)
    marker = f"/api/v1/time?probe={time.monotonic_ns()}"
    assert httpx.get(f"{cp.url}{marker}").status_code == 503
    deadline = time.monotonic() + 5
    found: list[dict[str, object]] = []
    while not found and time.monotonic() < deadline:
        found = [json.loads(line) for line in cp.logs()
                 if '"event": "request"' in line and '"/api/v1/time"' in line]
        found = [r for r in found if r["status"] == 503]
        time.sleep(0.02)
    assert found and found[-1]["route"] == "time" and found[-1]["component"] == "controlplane"
    assert found[-1]["level"] == "error"  # a 5xx answer, injected or not, is an error line
