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
    assert StateStore(str(tmp_path / "state.json")).load() == {"npus": {"a": [0]}, "ssh_ports": {"a": 22222}}


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
            st["ssh_ports"][f"u{i}"] = i

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(s.load()["ssh_ports"]) == 20
