"""teardown_all: a lab's domains go down side by side, and one that fails stops no other."""

from __future__ import annotations

import importlib
import threading

import pytest

from harness.machines.vm.libvirt_vm import teardown_all

pytestmark = [pytest.mark.unit,
              pytest.mark.needs_module("libvirt", how="pip install -e '.[vm]' (make setup)")]


class FakeDomain:
    """Running until destroyed; destroy waits at ``barrier`` (all parties must be inside
    destroy at once, so a one-after-the-other teardown breaks it)."""

    def __init__(self, name: str, barrier: threading.Barrier | None = None,
                 refuse_undefine: bool = False) -> None:
        self._name = name
        self.barrier = barrier
        self.refuse_undefine = refuse_undefine
        self.active = True
        self.undefined = False

    def name(self) -> str:
        return self._name

    def isActive(self) -> bool:
        return self.active

    def destroy(self) -> None:
        if self.barrier is not None:
            self.barrier.wait(timeout=5)
        self.active = False

    def undefineFlags(self, flags: int) -> None:
        if self.refuse_undefine:
            raise importlib.import_module("libvirt").libvirtError("domain is locked")
        self.undefined = True


def test_the_domains_are_destroyed_at_the_same_time() -> None:
    barrier = threading.Barrier(3)
    doms = [FakeDomain(f"vm{i}", barrier) for i in range(3)]
    assert teardown_all(doms) == []
    assert all(not d.active and d.undefined for d in doms)


def test_one_domain_that_cannot_be_undefined_stops_no_other() -> None:
    doms = [FakeDomain("a"), FakeDomain("b", refuse_undefine=True), FakeDomain("c")]
    errors = teardown_all(doms)
    assert len(errors) == 1 and "undefine b failed" in errors[0] and "flexlab clean" in errors[0]
    assert doms[0].undefined and doms[2].undefined and not doms[1].undefined
    assert all(not d.active for d in doms)


def test_one_domain_and_none_need_no_threads() -> None:
    assert teardown_all([]) == []
    dom = FakeDomain("only")
    assert teardown_all([dom]) == [] and dom.undefined
