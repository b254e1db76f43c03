"""The node kernel builder: its fragment, the check that Kconfig kept every option, the
cache, and the whole make sequence run against a fake kernel source tree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nodeimage import kernel, packages
from nodeimage.errors import KernelBuildError
from nodeimage.packages import DebPackage

pytestmark = pytest.mark.unit

needs_make = pytest.mark.needs(shutil.which("make") is not None and shutil.which("xz") is not None,
                               reason="needs make and xz: apt-get install make xz-utils")


def test_the_committed_fragment_parses_and_asks_for_what_the_vms_need() -> None:
    wanted = kernel.parse_fragment(kernel.FRAGMENT.read_text())
    # the NICs and disk buses scenarios give VMs, the console, and no modules to load
    for option in ("CONFIG_VIRTIO_NET", "CONFIG_E1000", "CONFIG_E1000E", "CONFIG_8139TOO",
                   "CONFIG_VIRTIO_BLK", "CONFIG_SATA_AHCI", "CONFIG_ATA_PIIX", "CONFIG_EXT4_FS",
                   "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_EFI_STUB", "CONFIG_PACKET",
                   "CONFIG_RTC_DRV_CMOS", "CONFIG_KERNEL_LZ4", "CONFIG_HW_RANDOM_VIRTIO"):
        assert wanted[option] == "y", option
    assert wanted["CONFIG_MODULES"] == "n"


def test_a_fragment_line_that_is_no_option_is_named() -> None:
    with pytest.raises(KernelBuildError, match=r"line 3: 'VIRTIO_NET=y'"):
        kernel.parse_fragment("# comment\nCONFIG_A=y\nVIRTIO_NET=y\n")
    with pytest.raises(KernelBuildError, match="sets no option"):
        kernel.parse_fragment("# only comments\n\n")


def test_dropped_options_catch_what_kconfig_silently_left_out() -> None:
    wanted = {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n", "CONFIG_D": '"-x"',
              "CONFIG_E": "n"}
    config = ("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=\"-x\"\n")
    assert kernel.dropped_options(wanted, config) == ["CONFIG_B=y (got n)", "CONFIG_C=n (got y)"]
    # absent counts as n: honoured for CONFIG_E, named for a wanted y
    assert kernel.dropped_options({"CONFIG_F": "y"}, "") == ["CONFIG_F=y (got absent)"]
    assert kernel.dropped_options(wanted, config.replace("# CONFIG_B is not set", "CONFIG_B=y")
                                  .replace("CONFIG_C=y", "")) == []


def test_the_digest_follows_the_fragment_and_the_source(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fragment = tmp_path / "kernel.config"
    fragment.write_text("CONFIG_A=y\n")
    monkeypatch.setattr(kernel, "FRAGMENT", fragment)
    src = DebPackage(kernel.SOURCE_PACKAGE, "1", tmp_path / "x.deb", "a" * 64)
    first = kernel.kernel_digest(src)
    assert kernel.kernel_digest(src) == first
    fragment.write_text("CONFIG_A=y\nCONFIG_B=y\n")
    assert kernel.kernel_digest(src) != first
    assert kernel.kernel_digest(DebPackage(src.name, "2", src.path, "b" * 64)) != \
        kernel.kernel_digest(src)


# -- the build sequence, against a fake source tree -------------------------------------
FAKE_MAKEFILE = """\
tinyconfig:
\tprintf '# CONFIG_MODULES is not set\\nCONFIG_FOO=y\\n' > .config
olddefconfig:
\tif [ -f DROP ]; then sed -i "/^$$(cat DROP)=/d" .config; fi
bzImage:
\t@echo "  CC      init/main.o"
\tmkdir -p arch/x86/boot && printf 'fake bzImage' > arch/x86/boot/bzImage
kernelrelease:
\t@echo 6.1.999-flexlab
"""
# merge_config.sh -m .config FRAGMENT: the fragment's lines win (appended last)
FAKE_MERGE = "#!/bin/sh\ngrep -v '^#' \"$3\" | grep . >> \"$2\"\n"


def _fake_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, drop: str | None) -> Path:
    src = tmp_path / "src" / "linux-source-6.1"
    (src / "scripts/kconfig").mkdir(parents=True)
    (src / "Makefile").write_text(FAKE_MAKEFILE)
    merge = src / "scripts/kconfig/merge_config.sh"
    merge.write_text(FAKE_MERGE)
    merge.chmod(0o755)
    if drop:
        (src / "DROP").write_text(drop)
    tree = tmp_path / "extracted"
    (tree / "usr/src").mkdir(parents=True)
    subprocess.run(["tar", "-cJf", str(tree / "usr/src/linux-source-6.1.tar.xz"), "-C",
                    str(src.parent), src.name], check=True)
    deb = DebPackage(kernel.SOURCE_PACKAGE, "6.1.999-1", tmp_path / "src.deb", "c" * 64)
    monkeypatch.setattr(packages, "download", lambda name, cache: deb)
    monkeypatch.setattr(packages, "extract", lambda pkg, cache: tree)
    monkeypatch.setattr(kernel, "missing_tools", lambda: [])
    return tree


@needs_make
def test_a_build_runs_the_config_steps_then_caches(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_source(tmp_path, monkeypatch, drop=None)
    said: list[str] = []
    built = kernel.build_kernel(tmp_path / "cache", jobs=1, say=said.append)
    assert not built.cached
    assert built.release == "6.1.999-flexlab"
    assert built.image.read_bytes() == b"fake bzImage"
    config = (built.image.parent / "config").read_text()
    assert "CONFIG_VIRTIO_NET=y" in config  # the fragment was merged
    assert any("building the node kernel" in line for line in said)
    # nothing but the result is left: the source tree is gone
    assert sorted(p.name for p in (tmp_path / "cache/kernel").iterdir()) == [".lock",
                                                                           built.digest]
    again = kernel.build_kernel(tmp_path / "cache", jobs=1, say=said.append)
    assert again.cached and again.image == built.image


@needs_make
def test_an_option_kconfig_dropped_stops_the_build_and_keeps_the_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_source(tmp_path, monkeypatch, drop="CONFIG_E1000E")
    with pytest.raises(KernelBuildError, match=r"CONFIG_E1000E=y \(got absent\)") as caught:
        kernel.build_kernel(tmp_path / "cache", jobs=1, say=lambda _: None)
    assert "failed-build.log" in str(caught.value)
    assert (tmp_path / "cache/kernel/failed-build.log").exists()
    assert sorted(p.name for p in (tmp_path / "cache/kernel").iterdir()) == [
        ".lock", "failed-build.log"]


def test_missing_tools_are_named_with_the_way_out(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    deb = DebPackage(kernel.SOURCE_PACKAGE, "6.1.999-1", tmp_path / "src.deb", "d" * 64)
    monkeypatch.setattr(packages, "download", lambda name, cache: deb)
    monkeypatch.setattr(kernel, "TOOLS", ("make", "no-such-tool-flexlab"))
    with pytest.raises(KernelBuildError, match=r"no-such-tool-flexlab.*setup-host\.sh"):
        kernel.build_kernel(tmp_path / "cache", say=lambda _: None)
