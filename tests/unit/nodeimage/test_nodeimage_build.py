"""The image build end to end on fake packages: reproducible bytes, content-hash cache."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from kofake import write_fake_module
from ntpfake import add_libc_extra, host_ntp_trees
from tlsfake import host_tls_trees

from bootproxy.cainitrd import CA_PATH
from nodeimage import build as build_mod
from nodeimage import initramfs, packages
from nodeimage import kernel as kernel_mod
from nodeimage.build import build_image, input_digest, latest_built, prune
from nodeimage.errors import NodeImageError
from nodeimage.initramfs import FILES_DIR
from nodeimage.kmod import WANTED_MODULES
from nodeimage.packages import DebPackage
from nodeimage.tlsclient import TLS_FILES

pytestmark = pytest.mark.unit

RELEASE = "6.1.0-99-amd64"


def _busybox_with_cpio() -> str | None:
    path = shutil.which("busybox")
    if path is None:
        return None
    help_text = subprocess.run([path, "cpio", "--help"], capture_output=True, text=True)
    return path if "--renumber-inodes" in help_text.stdout + help_text.stderr else None


BUSYBOX = _busybox_with_cpio()
needs_busybox = pytest.mark.needs(BUSYBOX is not None,
                                  reason="needs busybox with cpio --renumber-inodes: "
                                         "apt-get install busybox-static")


@pytest.fixture
def fake_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Stand-ins for apt: a kernel tree with every wanted module, and the host busybox."""
    versions = {"kernel": "6.1.999-1", "busybox": "1:1.35.0-4"}
    kernel_tree = tmp_path / "kernel-tree"
    (kernel_tree / "boot").mkdir(parents=True)
    (kernel_tree / "boot" / f"vmlinuz-{RELEASE}").write_bytes(b"fake bzImage")
    for name in WANTED_MODULES:
        deps = ["virtio_ring"] if name.startswith("virtio_") and name != "virtio_ring" else []
        write_fake_module(kernel_tree / f"lib/modules/{RELEASE}/kernel/drivers/{name}.ko", deps)
    bb_tree = tmp_path / "busybox-tree"
    (bb_tree / "bin").mkdir(parents=True)
    assert BUSYBOX is not None
    shutil.copyfile(BUSYBOX, bb_tree / "bin/busybox")
    (bb_tree / "bin/busybox").chmod(0o755)

    tls_trees = host_tls_trees(tmp_path / "tls")
    add_libc_extra(tls_trees["libc6"])
    tls_trees.update(host_ntp_trees(tmp_path / "ntp"))

    def download(name: str, cache_dir: Path) -> DebPackage:
        key = "busybox" if name == packages.BUSYBOX_PACKAGE else "kernel"
        key = name if name in tls_trees else key
        return DebPackage(name, versions.get(key, "1"), cache_dir / f"{name}.deb", f"{key}-sha")

    def extract(pkg: DebPackage, cache_dir: Path) -> Path:
        if pkg.name in tls_trees:
            return tls_trees[pkg.name]
        return bb_tree if pkg.name == packages.BUSYBOX_PACKAGE else kernel_tree

    monkeypatch.setattr(packages, "download", download)
    monkeypatch.setattr(packages, "download_all",
                        lambda names, cache_dir: [download(n, cache_dir) for n in names])
    monkeypatch.setattr(packages, "extract", extract)
    # what these tests check (layout, determinism, the cache) holds at any level
    monkeypatch.setattr(initramfs, "GZIP_LEVEL", 1)
    return versions


@needs_busybox
def test_same_inputs_give_same_bytes_and_cache(tmp_path: Path,
                                               fake_packages: dict[str, str]) -> None:
    kernel = "linux-image-6.1.0-99-amd64"
    first = build_image(tmp_path / "out1", tmp_path / "cache", kernel)
    second = build_image(tmp_path / "out2", tmp_path / "cache", kernel)
    assert not first.cached and not second.cached
    assert first.image_id == second.image_id
    for name in ("vmlinuz", "initrd.img", "manifest.json"):
        assert (first.directory / name).read_bytes() == (second.directory / name).read_bytes()
    again = build_image(tmp_path / "out1", tmp_path / "cache", kernel)
    assert again.cached and again.directory == first.directory


@needs_busybox
def test_new_package_version_gives_new_image(tmp_path: Path,
                                             fake_packages: dict[str, str]) -> None:
    kernel = "linux-image-6.1.0-99-amd64"
    first = build_image(tmp_path / "out", tmp_path / "cache", kernel)
    fake_packages["busybox"] = "1:1.36.0-1"
    second = build_image(tmp_path / "out", tmp_path / "cache", kernel)
    assert first.image_id != second.image_id and not second.cached


@needs_busybox
def test_initrd_layout(tmp_path: Path, fake_packages: dict[str, str]) -> None:
    result = build_image(tmp_path / "out", tmp_path / "cache", "linux-image-6.1.0-99-amd64")
    raw = result.initrd.read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip header must carry no timestamp"
    assert len(raw) % 4 == 0, "a CA initrd appended must start 4-byte aligned"
    assert BUSYBOX is not None
    listing = subprocess.run([BUSYBOX, "cpio", "-t"], input=gzip.decompress(raw),
                             capture_output=True, check=True).stdout.decode().split()
    for expected in ("init", "bin/busybox", "bin/sh", "flexlab/agent.sh",
                     "flexlab/udhcpc.script", f"lib/modules/{RELEASE}/modules.dep",
                     f"lib/modules/{RELEASE}/flexlab.load", "flexlab/https.sh",
                     "usr/bin/openssl", "lib64/ld-linux-x86-64.so.2",
                     # the NTP client: chronyd, the libraries it links, root for -u root
                     "usr/sbin/chronyd", "usr/lib/x86_64-linux-gnu/libgnutls.so.30",
                     "lib/x86_64-linux-gnu/libm.so.6", "etc/passwd",
                     *(rel for rels in TLS_FILES.values() for rel in rels)):
        assert expected in listing
    assert listing == sorted(listing)
    manifest = result.manifest
    assert manifest["kernel_release"] == RELEASE
    assert "virtio_net" in json.dumps(manifest["modules"])
    ntp = manifest["ntp_client"]
    assert isinstance(ntp, dict) and ntp["program"] == "/usr/sbin/chronyd"
    client = manifest["tls_client"]
    assert isinstance(client, dict) and client["program"] == "/usr/bin/openssl"
    assert client["ca_path"] == "/" + CA_PATH and client["https"] == "/flexlab/https.sh"
    assert {"openssl", "libssl3", "libc6"} <= {p["name"] for p in manifest["inputs"]["packages"]}


def test_digest_covers_agent_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pkgs = [DebPackage("k", "1", tmp_path / "k.deb", "aa")]
    base, inputs = input_digest(pkgs)
    assert "files/agent.sh" in json.dumps(inputs)
    fake_files = tmp_path / "files"
    shutil.copytree(FILES_DIR, fake_files)
    (fake_files / "agent.sh").write_text("#!/bin/sh\necho changed\n")
    monkeypatch.setattr(build_mod.initramfs, "FILES_DIR", fake_files)
    changed, _ = input_digest(pkgs)
    assert changed != base


@needs_busybox
@pytest.mark.parametrize("script", ["init", "agent.sh", "udhcpc.script", "https.sh"])
def test_shell_files_parse(script: str) -> None:
    assert BUSYBOX is not None
    proc = subprocess.run([BUSYBOX, "sh", "-n", str(FILES_DIR / script)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@needs_busybox
def test_latest_built_finds_newest_without_apt(tmp_path: Path,
                                               fake_packages: dict[str, str]) -> None:
    assert latest_built(tmp_path / "out") is None
    first = build_image(tmp_path / "out", tmp_path / "cache", "linux-image-6.1.0-99-amd64")
    fake_packages["kernel"] = "6.1.999-2"
    second = build_image(tmp_path / "out", tmp_path / "cache", "linux-image-6.1.0-99-amd64")
    os.utime(first.directory / "manifest.json", (1, 1))
    found = latest_built(tmp_path / "out")
    assert found is not None and found.image_id == second.image_id


def test_prune_keeps_newest(tmp_path: Path) -> None:
    for index, name in enumerate(["a", "b", "c"]):
        (tmp_path / name).mkdir()
        manifest = tmp_path / name / "manifest.json"
        manifest.write_text("{}")
        os.utime(manifest, (100 + index, 100 + index))
    removed = prune(tmp_path, keep=2)
    assert removed == [tmp_path / "a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]


@needs_busybox
def test_a_built_kernel_image_carries_no_modules(tmp_path: Path, fake_packages: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bz = tmp_path / "bzImage"
    bz.write_bytes(b"built bzImage")
    src = DebPackage(kernel_mod.SOURCE_PACKAGE, "6.1.999-1", tmp_path / "s.deb", "s" * 64)
    built = kernel_mod.BuiltKernel(bz, "6.1.999-flexlab", src, "d1", cached=True)
    monkeypatch.setattr(kernel_mod, "build_kernel", lambda cache, force=False: built)
    result = build_image(tmp_path / "out", tmp_path / "cache", kernel_kind="flexlab")
    assert result.kernel.read_bytes() == b"built bzImage"
    manifest = result.manifest
    assert manifest["kernel"] == "flexlab" and manifest["kernel_release"] == "6.1.999-flexlab"
    assert manifest["modules"] == []
    assert BUSYBOX is not None
    listing = subprocess.run([BUSYBOX, "cpio", "-t"], input=gzip.decompress(
        result.initrd.read_bytes()), capture_output=True, check=True).stdout.decode().split()
    assert "lib/modules/6.1.999-flexlab/flexlab.load" in listing  # /init reads it: empty
    assert not [name for name in listing if name.endswith(".ko")]
    # a different kernel build is a different image
    other = kernel_mod.BuiltKernel(bz, "6.1.999-flexlab", src, "d2", cached=True)
    monkeypatch.setattr(kernel_mod, "build_kernel", lambda cache, force=False: other)
    assert build_image(tmp_path / "out", tmp_path / "cache",
                       kernel_kind="flexlab").image_id != result.image_id


def test_the_kernel_choice_comes_from_the_flag_then_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(build_mod.KERNEL_ENV, raising=False)
    assert build_mod.kernel_choice() == "flexlab"
    monkeypatch.setenv(build_mod.KERNEL_ENV, "debian")
    assert build_mod.kernel_choice() == "debian"
    assert build_mod.kernel_choice("flexlab") == "flexlab"
    monkeypatch.setenv(build_mod.KERNEL_ENV, "vanilla")
    with pytest.raises(NodeImageError, match=r"'vanilla' \(from \$FLEXLAB_NODE_KERNEL\)"):
        build_mod.kernel_choice()
    with pytest.raises(NodeImageError, match="needs --kernel debian"):
        build_image(tmp_path / "out", tmp_path / "cache", "linux-image-6.1.0-99-amd64",
                    kernel_kind="flexlab")
