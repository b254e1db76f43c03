"""serve_until_interrupted: an interrupt ends a lab helper quietly; anything else is raised;
the server is closed either way."""

from __future__ import annotations

import pytest

from harness.components.standalone import serve_until_interrupted

pytestmark = pytest.mark.unit


def _raise(exc: BaseException) -> None:
    raise exc


def test_an_interrupt_closes_and_exits_zero() -> None:
    closed: list[bool] = []
    assert serve_until_interrupted(lambda: _raise(KeyboardInterrupt()),
                                   lambda: closed.append(True)) == 0
    assert closed == [True]


def test_a_crash_still_closes_and_is_raised() -> None:
    closed: list[bool] = []
    with pytest.raises(OSError, match="bind"):
        serve_until_interrupted(lambda: _raise(OSError("bind")), lambda: closed.append(True))
    assert closed == [True]
