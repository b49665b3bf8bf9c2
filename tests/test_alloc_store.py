import json
import os
import stat
import threading

import pytest

from ml_workshop.store import StateStore


def test_transaction_persists_0600(tmp_path):
    s = StateStore(str(tmp_path / "state.json"))
    with s.transaction() as st:
        st["npus"]["a"] = [0]
        st["ssh_ports"]["a"] = 22222
    assert stat.S_IMODE(os.stat(tmp_path / "state.json").st_mode) == 0o600
    # a new store object (a restarted hub) reads the same allocations
    assert StateStore(str(tmp_path / "state.json")).load() == {
        "npus": {"a": [0]},
        "ssh_ports": {"a": 22222},
        "ports": {},
        "placed": {},
        "homes": {},
    }


def test_failed_transaction_writes_nothing(tmp_path):
    s = StateStore(str(tmp_path / "state.json"))
    with s.transaction() as st:
        st["ssh_ports"]["a"] = 1
    with pytest.raises(RuntimeError):
        with s.transaction() as st:
            st["ssh_ports"]["b"] = 2
            raise RuntimeError("boom")
    assert json.loads((tmp_path / "state.json").read_text())["ssh_ports"] == {"a": 1}


def test_concurrent_transactions_do_not_lose_updates(tmp_path):
    s = StateStore(str(tmp_path / "state.json"))

    def add(i):
        with s.transaction() as st:
            st["ssh_ports"][f"u{i}"] = 22222 + i

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s.load()["ssh_ports"]) == 20


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "",
        "[]",
        '{"npus": [], "ssh_ports": {}}',
        '{"npus": {"a": ["0"]}, "ssh_ports": {}}',
        '{"npus": {"a": [0], "b": [0, 1]}, "ssh_ports": {}}',  # one NPU, two owners
        '{"npus": {}, "ssh_ports": {"a": 22222, "b": 22222}}',
        '{"npus": {}, "ssh_ports": {"a": "22222"}}',
    ],
)
def test_damaged_file_is_moved_aside_and_rebuilt(tmp_path, text, caplog):
    path = tmp_path / "state.json"
    path.write_text(text)
    s = StateStore(str(path))
    assert s.load() == {
        "npus": {},
        "ssh_ports": {},
        "ports": {},
        "placed": {},
        "homes": {},
    }  # read-only view: never trusted
    rebuilt = {"npus": {"carol": [2]}, "ssh_ports": {"carol": 22230}, "ports": {}, "placed": {}, "homes": {}}
    with caplog.at_level("ERROR", logger="ml_workshop.store"):
        with s.transaction(rebuild=lambda: rebuilt) as st:
            assert st == rebuilt
            st["ssh_ports"]["dan"] = 22231
    aside = list(tmp_path.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == text  # kept for the admin to look at
    assert s.load() == {
        "npus": {"carol": [2]},
        "ssh_ports": {"carol": 22230, "dan": 22231},
        "ports": {},
        "placed": {},
        "homes": {},
    }
    assert "damaged" in caplog.text and "rebuilt from the running containers' labels" in caplog.text


def test_damaged_file_without_rebuild_is_left_alone(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{broken")
    with StateStore(str(path)).transaction() as st:  # a release: cannot rebuild
        st["npus"]["x"] = [1]
    assert path.read_text() == "{broken" and not list(tmp_path.glob("*.corrupt-*"))


def test_state_from_labels():
    from ml_workshop import container

    found = [
        {"Labels": container.label_values("alice", [0, 1], 22222)},
        {
            "Labels": {
                container.LABEL_USER: "bob",
                container.LABEL_NPUS: "1,2",
                container.LABEL_SSH_PORT: "22223",
            }
        },
        {"Labels": {container.LABEL_USER: "eve", container.LABEL_NPUS: "x", container.LABEL_SSH_PORT: "?"}},
        {"Labels": {}},
    ]
    got = container.state_from_labels(found)
    # bob's NPU 1 is alice's already: not given twice
    assert got == {"npus": {"alice": [0, 1]}, "ssh_ports": {"alice": 22222, "bob": 22223}, "ports": {}}
    assert container.state_from_labels(found, record_npus=False)["npus"] == {}


def test_cluster_tables_survive_and_are_checked(tmp_path):
    """Cluster mode's tables (where each server runs, where each student's work is) are kept
    across hub restarts; a damaged entry makes the file untrusted like any other."""
    s = StateStore(str(tmp_path / "state.json"))
    with s.transaction() as st:
        st["placed"]["a"] = {"node": "npu1", "npus": [3]}
        st["homes"]["a"] = "npu1"
    got = StateStore(str(tmp_path / "state.json")).load()
    assert got["placed"] == {"a": {"node": "npu1", "npus": [3]}} and got["homes"] == {"a": "npu1"}
    from ml_workshop.store import StateDamaged, validate

    for bad in (
        {"placed": {"a": {"npus": [1]}}},
        {"placed": {"a": {"node": "n", "npus": [-1]}}},
        {"homes": {"a": 3}},
    ):
        with pytest.raises(StateDamaged):
            validate(bad)
