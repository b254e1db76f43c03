"""Auth and input validation: clear 401/403/400/413/422 bodies."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from cp_helpers import ADMIN, site, unique

from controlplane.client import ControlPlaneClient
from harness.components.controlplane_process import ControlPlaneProcess

pytestmark = pytest.mark.unit


def test_missing_and_unknown_tokens_are_401(cp: ControlPlaneProcess) -> None:
    body = {"name": unique("c"), "mode": "hybrid", "expected_nodes": 1, "environment": "dev"}
    missing = httpx.post(f"{cp.url}/api/v1/clusters", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"] == "unauthenticated"
    assert "Authorization: Bearer" in missing.json()["detail"]
    unknown = httpx.post(f"{cp.url}/api/v1/clusters", json=body,
                         headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401 and "unknown token" in unknown.json()["detail"]


def test_wrong_kind_of_token_is_403(cp: ControlPlaneProcess, admin: ControlPlaneClient) -> None:
    s = site(admin)
    answer = httpx.get(f"{cp.url}/api/v1/clusters",
                       headers={"Authorization": f"Bearer {s['proxy_token']}"})
    assert answer.status_code == 403
    assert answer.json() == {"error": "forbidden", "detail":
                             "this route needs a token of kind admin; you sent a proxy token"}


def test_unknown_field_is_422_naming_it(cp: ControlPlaneProcess) -> None:
    answer = httpx.post(
        f"{cp.url}/api/v1/clusters", headers={"Authorization": f"Bearer {ADMIN}"},
        json={"name": unique("c"), "mode": "hybrid", "expected_nodes": 1,
              "environment": "dev", "colour": "blue"},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"] == "validation failed"
    assert body["fields"][0]["loc"] == ["body", "colour"]
    assert "body.colour" in body["detail"]


def test_bad_value_is_422_naming_field(cp: ControlPlaneProcess) -> None:
    answer = httpx.post(
        f"{cp.url}/api/v1/clusters", headers={"Authorization": f"Bearer {ADMIN}"},
        json={"name": unique("c"), "mode": "sideways", "expected_nodes": 0,
              "environment": "dev"},
    )
    assert answer.status_code == 422
    locs = [f["loc"] for f in answer.json()["fields"]]
    assert ["body", "mode"] in locs and ["body", "expected_nodes"] in locs


def test_malformed_json_is_400(cp: ControlPlaneProcess) -> None:
    answer = httpx.post(
        f"{cp.url}/api/v1/clusters", content=b'{"name": "x", ',
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "malformed JSON"


def test_oversized_body_is_413_but_artifacts_may_be_large(cp: ControlPlaneProcess,
                                                         admin: ControlPlaneClient) -> None:
    big = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    answer = httpx.post(f"{cp.url}/api/v1/clusters", content=big, headers=headers)
    assert answer.status_code == 413
    assert "limited to 1048576 bytes" in answer.json()["detail"]

    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b" " * (512 * 1024)

    streamed = httpx.post(f"{cp.url}/api/v1/clusters", content=chunks(), headers=headers)
    assert streamed.status_code == 413
    blob = bytes(range(256)) * 8192  # 2 MiB
    meta = admin.upload_artifact("big.img", blob)
    assert meta.size == len(blob)
    assert admin.download_artifact("big.img") == blob


def test_bad_mac_in_path_is_422(cp: ControlPlaneProcess) -> None:
    answer = httpx.get(f"{cp.url}/api/v1/machines/not-a-mac",
                       headers={"Authorization": f"Bearer {ADMIN}"})
    assert answer.status_code == 422 and "path.mac" in answer.json()["detail"]
