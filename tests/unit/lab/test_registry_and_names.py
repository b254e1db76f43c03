"""Lab ids, naming rules and the registry that `flexlab clean` relies on."""

import os

import pytest

from harness.lab import names
from harness.lab.registry import (
    LabRecord,
    ProcessRecord,
    Registry,
    new_record,
    owner_alive,
    process_alive,
    process_starttime,
)

pytestmark = pytest.mark.unit


def test_lab_ids_are_short_unique_and_recognisable():
    ids = {names.new_lab_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(names.is_lab_id(i) and len(i) == 7 for i in ids)
    assert not names.is_lab_id("fl-abc")
    assert not names.is_lab_id("docker0")


def test_every_name_carries_the_lab_id():
    assert names.switch_ns("flab123") == "flab123"
    assert names.host_ns("flab123", "dhcp") == "flab123-dhcp"
    assert names.temp_dir("flab123").name == "flexlab-flab123"
    # interface names live inside the lab's namespaces and must fit IFNAMSIZ
    assert len(names.switch_port("abcdefghij", 9)) <= 15
    assert len(names.bridge("abcdefghij")) <= 15


def test_registry_round_trip(tmp_path):
    reg = Registry(tmp_path)
    rec = new_record("flab123")
    rec.namespaces = ["flab123", "flab123-dhcp"]
    rec.processes.append(ProcessRecord(os.getpid(), process_starttime(os.getpid()) or 0, "me"))
    reg.save(rec)
    loaded = reg.load("flab123")
    assert loaded == rec
    assert reg.lab_ids() == ["flab123"]
    assert owner_alive(loaded)
    assert process_alive(loaded.processes[0])
    reg.remove("flab123")
    assert reg.lab_ids() == []


def test_registry_ignores_damaged_and_foreign_files(tmp_path):
    reg = Registry(tmp_path)
    (tmp_path / "flbroke.json").write_text("{not json")
    (tmp_path / "notalab.json").write_text("{}")
    assert reg.lab_ids() == ["flbroke"]
    assert reg.load("flbroke") is None


def test_pid_reuse_is_not_mistaken_for_our_process():
    me = ProcessRecord(os.getpid(), (process_starttime(os.getpid()) or 0) + 1, "impostor")
    assert not process_alive(me)
    dead = LabRecord("flab999", owner_pid=2**22 + 7, owner_starttime=1, created=0.0)
    assert not owner_alive(dead)
