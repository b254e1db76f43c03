"""bench/proxydhcp_profile.py: py-spy's collapsed stacks summed into per-function shares."""

from __future__ import annotations

import pytest

from bench.errors import BenchError
from bench.proxydhcp_profile import summarise

pytestmark = pytest.mark.unit

MAIN = "main (bootproxy/__main__.py:10)"
READ = "_on_readable (bootproxy/dhcp/server.py:200)"
RAW = "\n".join([
    f"{MAIN};select (/usr/lib/python3.11/selectors.py:468) 6",
    f"{MAIN};{READ};parse (bootproxy/dhcp/codec.py:210) 3",
    "main (bootproxy/__main__.py:11);_on_readable (bootproxy/dhcp/server.py:201) 1",
])


def test_shares_are_inclusive_and_own_per_function_not_per_line() -> None:
    out = summarise(RAW)
    assert out["samples"] == 10
    inclusive = dict(out["inclusive_pct"])
    own = dict(out["own_pct"])
    assert inclusive["main (__main__.py)"] == 100.0  # two lines of main: one function
    assert inclusive["_on_readable (server.py)"] == 40.0
    assert own["_on_readable (server.py)"] == 10.0
    assert own["select (selectors.py)"] == 60.0
    assert own["parse (codec.py)"] == 30.0


def test_no_samples_is_an_error_that_says_why() -> None:
    with pytest.raises(BenchError, match="no samples"):
        summarise("")
