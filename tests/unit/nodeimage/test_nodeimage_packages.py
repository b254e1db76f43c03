"""Kernel package resolution from apt's answers (apt itself is faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nodeimage import packages
from nodeimage.errors import PackageError

pytestmark = pytest.mark.unit

DEPENDS = """linux-image-amd64
  Depends: linux-image-6.1.0-56-amd64
"""
POLICY = """busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
"""


def test_kernel_package_follows_meta_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: DEPENDS)
    assert packages.resolve_kernel_package() == "linux-image-6.1.0-56-amd64"


def test_non_61_kernel_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = "linux-image-amd64\n  Depends: linux-image-6.12.9-amd64\n"
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: answer)
    with pytest.raises(PackageError, match="--kernel-package"):
        packages.resolve_kernel_package()


def test_candidate_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: POLICY)
    assert packages.candidate_version("busybox-static") == "1:1.35.0-4+deb12u1+b1"


def test_no_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    answer = POLICY.replace("1:1.35.0-4+deb12u1+b1", "(none)")
    monkeypatch.setattr(packages, "_run", lambda argv, cwd=None: answer)
    with pytest.raises(PackageError, match="apt-get update"):
        packages.candidate_version("busybox-static")


POLICY_MANY = """busybox-static:
  Installed: (none)
  Candidate: 1:1.35.0-4+deb12u1+b1
  Version table:
     1:1.35.0-4+deb12u1+b1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
libc6:
  Installed: 2.36-9+deb12u14
  Candidate: 2.36-9+deb12u14
  Version table:
 *** 2.36-9+deb12u14 500
        100 /var/lib/dpkg/status
"""


class FakeApt:
    """Answers `apt-cache policy` from a table and `dpkg-deb -f` from a file's first line;
    counts every call."""

    def __init__(self, policy: str = POLICY_MANY) -> None:
        self.policy = policy
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str], cwd: Path | None = None) -> str:
        self.calls.append(argv)
        if argv[:2] == ["apt-cache", "policy"]:
            return self.policy
        if argv[:2] == ["dpkg-deb", "-f"]:
            name, version = Path(argv[2]).read_text().split()[:2]
            return f"Package: {name}\nVersion: {version}\n"
        raise AssertionError(f"unexpected command {argv}")


def test_one_apt_call_answers_every_name(monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt()
    monkeypatch.setattr(packages, "_run", apt)
    assert packages.candidate_versions(["libc6", "busybox-static"]) == {
        "libc6": "2.36-9+deb12u14", "busybox-static": "1:1.35.0-4+deb12u1+b1"}
    assert apt.calls == [["apt-cache", "policy", "libc6", "busybox-static"]]


def test_every_name_without_a_candidate_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = POLICY_MANY.replace("Candidate: 2.36-9+deb12u14", "Candidate: (none)")
    monkeypatch.setattr(packages, "_run", FakeApt(policy))
    with pytest.raises(PackageError, match=r"no candidate for libc6, nosuch; run apt-get update"):
        packages.candidate_versions(["busybox-static", "libc6", "nosuch"])


def test_candidates_are_remembered_while_apt_state_is_unchanged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt()
    state = ["lists-1"]
    monkeypatch.setattr(packages, "_run", apt)
    monkeypatch.setattr(packages, "apt_state", lambda: state[0])
    names = ["busybox-static", "libc6"]
    first = packages.remembered_candidates(names, tmp_path)
    assert packages.remembered_candidates(names, tmp_path) == first
    assert packages.remembered_candidates(["libc6"], tmp_path) == {"libc6": first["libc6"]}
    assert len(apt.calls) == 1
    state[0] = "lists-2"  # apt-get update, a pin, an install: ask apt again
    apt.policy = POLICY_MANY.replace("2.36-9+deb12u14", "2.36-9+deb12u15")
    assert packages.remembered_candidates(names, tmp_path)["libc6"] == "2.36-9+deb12u15"
    assert len(apt.calls) == 2
    (tmp_path / "apt-candidates.json").write_text("{not json")  # a broken memo is re-asked
    assert packages.remembered_candidates(names, tmp_path)["libc6"] == "2.36-9+deb12u15"
    assert len(apt.calls) == 3


def test_apt_state_changes_with_a_list_a_pin_or_an_install(tmp_path: Path) -> None:
    etc, lists, status = tmp_path / "etc", tmp_path / "lists", tmp_path / "status"
    (etc / "preferences.d").mkdir(parents=True)
    lists.mkdir()
    (lists / "deb.debian.org_Packages").write_text("Package: a\n")
    status.write_text("Package: a\n")
    roots = (etc, lists, status)
    before = packages.apt_state(roots)
    assert packages.apt_state(roots) == before
    (etc / "preferences.d" / "pin").write_text("Package: a\nPin-Priority: 1001\n")
    pinned = packages.apt_state(roots)
    assert pinned != before
    (lists / "deb.debian.org_Packages").write_text("Package: a\nVersion: 2\n")
    updated = packages.apt_state(roots)
    assert updated != pinned
    status.write_text("Package: a\nStatus: install ok installed\n")
    assert packages.apt_state(roots) != updated


def test_a_cached_deb_is_identified_once_and_again_when_it_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt()
    monkeypatch.setattr(packages, "_run", apt)
    monkeypatch.setattr(packages, "apt_state", lambda: "s")
    deb = tmp_path / "libc6_2.36-9+deb12u14_amd64.deb"
    deb.write_text("libc6 2.36-9+deb12u14\n")
    got = packages.download("libc6", tmp_path)
    assert (got.name, got.version, got.path) == ("libc6", "2.36-9+deb12u14", deb)
    assert packages.download("libc6", tmp_path) == got
    dpkg = [c for c in apt.calls if c[0] == "dpkg-deb"]
    assert len(dpkg) == 1
    deb.write_text("libc6 2.36-9+deb12u14 rebuilt with other bytes\n")  # size changes
    again = packages.download("libc6", tmp_path)
    assert again.sha256 != got.sha256
    assert len([c for c in apt.calls if c[0] == "dpkg-deb"]) == 2


def test_a_cached_deb_of_another_version_is_not_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FakeApt()
    fetched: list[str] = []

    def run(argv: list[str], cwd: Path | None = None) -> str:
        if argv[:2] == ["apt-get", "download"]:
            fetched.append(argv[2])
            assert cwd is not None
            (cwd / "libc6_2.36-9+deb12u14_amd64.deb").write_text("libc6 2.36-9+deb12u14\n")
            return ""
        return apt(argv, cwd)

    monkeypatch.setattr(packages, "_run", run)
    monkeypatch.setattr(packages, "apt_state", lambda: "s")
    (tmp_path / "libc6_2.36-9+deb12u13_amd64.deb").write_text("libc6 2.36-9+deb12u13\n")
    got = packages.download("libc6", tmp_path)
    assert fetched == ["libc6=2.36-9+deb12u14"]
    assert got.version == "2.36-9+deb12u14" and got.path.name.endswith("u14_amd64.deb")
