"""Module dependency closure read from .modinfo (Debian ships no modules.dep)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kofake import write_fake_module

from nodeimage.errors import ModuleError
from nodeimage.kmod import modinfo, modules_dep, resolve

pytestmark = pytest.mark.unit


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    kernel = tmp_path / "lib/modules/6.1.0-99-amd64/kernel"
    write_fake_module(kernel / "drivers/virtio/virtio.ko", [])
    write_fake_module(kernel / "drivers/virtio/virtio_ring.ko", ["virtio"])
    write_fake_module(kernel / "drivers/net/virtio_net.ko", ["virtio", "net_failover",
                                                             "virtio_ring"])
    write_fake_module(kernel / "drivers/net/net_failover.ko", ["failover"])
    write_fake_module(kernel / "net/core/failover.ko", [])
    write_fake_module(kernel / "drivers/net/e1000.ko", [])
    return kernel


def test_modinfo_reads_depends(tree: Path) -> None:
    info = modinfo(tree / "drivers/net/virtio_net.ko")
    assert info["depends"] == ["virtio,net_failover,virtio_ring"]


def test_dependencies_load_first(tree: Path) -> None:
    order = [m.name for m in resolve(tree, ("virtio_net", "e1000"))]
    assert sorted(order) == sorted(["virtio", "failover", "net_failover", "virtio_ring",
                                    "virtio_net", "e1000"])
    for mod in resolve(tree, ("virtio_net",)):
        for dep in mod.depends:
            assert order.index(dep) < order.index(mod.name)


def test_missing_module_names_who_needs_it(tree: Path) -> None:
    (tree / "net/core/failover.ko").unlink()
    with pytest.raises(ModuleError, match=r"failover .*needed by net_failover"):
        resolve(tree, ("virtio_net",))


def test_optional_module_may_be_absent(tree: Path) -> None:
    assert [m.name for m in resolve(tree, ("e1000", "8139too"))] == ["e1000"]


def test_cycle_is_reported(tree: Path) -> None:
    write_fake_module(tree / "a.ko", ["b"])
    write_fake_module(tree / "b.ko", ["a"])
    with pytest.raises(ModuleError, match="cycle"):
        resolve(tree, ("a",))


def test_modules_dep_lists_full_closure(tree: Path) -> None:
    root = tree.parent
    text = modules_dep(resolve(tree, ("virtio_net",)), root)
    line = next(x for x in text.splitlines() if x.startswith("kernel/drivers/net/virtio_net.ko:"))
    assert "kernel/net/core/failover.ko" in line
    assert "kernel/drivers/virtio/virtio.ko" in line


def test_non_elf_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ko"
    bad.write_bytes(b"not an elf file at all, really")
    with pytest.raises(ModuleError, match="ELF"):
        modinfo(bad)
