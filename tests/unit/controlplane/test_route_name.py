"""The middleware's route lookup: the right name, worked out once per request."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Match, Route

from controlplane.middleware import route_name

pytestmark = pytest.mark.unit


class CountingRoute(Route):
    calls = 0

    def matches(self, scope: Any) -> tuple[Match, Any]:
        CountingRoute.calls += 1
        return super().matches(scope)


def _endpoint(request: Any) -> None:  # never called: only matched
    raise AssertionError


def test_the_route_is_matched_once_per_request() -> None:
    routes = [CountingRoute("/a", _endpoint, name="a"),
              CountingRoute("/b/{x}", _endpoint, name="b")]
    scope: dict[str, Any] = {"type": "http", "path": "/b/1", "method": "GET",
                             "root_path": ""}
    CountingRoute.calls = 0
    assert [route_name(routes, scope) for _ in range(3)] == ["b", "b", "b"]
    assert CountingRoute.calls == 2  # one scan: /a, then /b/{x}
    unknown: dict[str, Any] = {"type": "http", "path": "/c", "method": "GET",
                               "root_path": ""}
    assert route_name(routes, unknown) == route_name(routes, unknown) == ""
    assert CountingRoute.calls == 4
