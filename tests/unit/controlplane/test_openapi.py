"""The committed OpenAPI document is exactly what the service serves."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

import controlplane
from controlplane.__main__ import render_openapi
from controlplane.app import create_app
from controlplane.store import Store
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit

COMMITTED = Path(controlplane.__file__).with_name("openapi.json")
FASTAPI_OWN = {"openapi", "swagger_ui_html", "swagger_ui_redirect", "redoc_html"}
FIX = "regenerate it with `python -m controlplane --dump-openapi controlplane/openapi.json`"


def test_generated_document_matches_committed_file() -> None:
    assert render_openapi() == COMMITTED.read_text(), f"openapi.json is stale; {FIX}"


def test_served_document_matches_committed_file(cp: ControlPlaneProcess) -> None:
    served = httpx.get(f"{cp.url}/openapi.json").json()
    assert served == json.loads(COMMITTED.read_text()), f"served schema differs; {FIX}"


def test_contract_routes_are_all_present() -> None:
    paths = json.loads(COMMITTED.read_text())["paths"]
    contract = {
        ("/healthz", "get"), ("/api/v1/time", "get"), ("/api/v1/clusters", "post"),
        ("/api/v1/clusters", "get"), ("/api/v1/clusters/{name}", "get"),
        ("/api/v1/artifacts/{name}", "post"), ("/api/v1/artifacts/{name}", "get"),
        ("/api/v1/profiles", "post"), ("/api/v1/machines", "post"),
        ("/api/v1/machines", "get"), ("/api/v1/machines/{mac}", "get"),
        ("/api/v1/proxies", "post"), ("/api/v1/proxies/{name}/heartbeat", "post"),
        ("/api/v1/proxies/{name}/assignments", "get"), ("/api/v1/machines/{mac}/boot", "get"),
        ("/api/v1/nodes/register", "post"), ("/api/v1/nodes/{mac}/ready", "post"),
        ("/api/v1/conflicts", "post"), ("/api/v1/conflicts", "get"),
        ("/api/v1/events", "get"), ("/api/v1/faults", "put"), ("/api/v1/faults", "delete"),
    }
    present = {(path, method) for path, ops in paths.items() for method in ops}
    assert contract <= present, sorted(contract - present)


def test_every_operation_is_a_fault_target(tmp_path: Path) -> None:
    """Route names are what faults and the request log use: one per operationId."""
    store = Store(tmp_path / "cp.sqlite3")
    try:
        client = TestClient(create_app(store, "admin-openapi"))
        faults = client.get("/api/v1/faults", headers={"Authorization": "Bearer admin-openapi"})
    finally:
        store.close()
    paths = json.loads(COMMITTED.read_text())["paths"]
    operations = {op["operationId"] for ops in paths.values() for op in ops.values()}
    assert faults.status_code == 200, faults.text
    assert set(faults.json()["endpoints"]) == {"*", *operations, *FASTAPI_OWN}
