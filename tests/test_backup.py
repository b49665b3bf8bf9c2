"""ml_workshop.backup: the manifest backup.yml writes last and restore.yml checks first."""

from __future__ import annotations

import hashlib
import json

from ml_workshop import backup


def make(tmp_path):
    (tmp_path / "npu1").mkdir()
    (tmp_path / "npu1" / "hub.sqlite").write_bytes(b"db")
    (tmp_path / "npu1" / "student-work.tar.gz").write_bytes(b"work" * 100)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "devpi.tar.gz").write_bytes(b"devpi")
    (tmp_path / "empty").mkdir()  # a host with nothing fetched is not in the manifest
    return tmp_path


def test_manifest_lists_every_file_with_size_and_sha256(tmp_path):
    root = make(tmp_path)
    m = backup.write_manifest(root)
    assert sorted(m["hosts"]) == ["cache", "npu1"]
    assert m["hosts"]["npu1"]["student-work.tar.gz"]["size"] == 400
    assert m["hosts"]["cache"]["devpi.tar.gz"]["sha256"] == hashlib.sha256(b"devpi").hexdigest()
    on_disk = json.loads((root / "manifest.json").read_text())
    assert on_disk == m and (root / "manifest.json").stat().st_mode & 0o777 == 0o600
    assert backup.problems(root, backup.load_manifest(root)) == []


def test_a_damaged_missing_or_changed_file_is_named(tmp_path):
    root = make(tmp_path)
    backup.write_manifest(root)
    (root / "npu1" / "hub.sqlite").write_bytes(b"DB")  # same size, other bytes
    (root / "cache" / "devpi.tar.gz").unlink()
    (root / "npu1" / "student-work.tar.gz").write_bytes(b"short")
    found = backup.problems(root, backup.load_manifest(root))
    assert "npu1/hub.sqlite: checksum differs from the manifest (damaged or changed)" in found
    assert "cache/devpi.tar.gz: missing" in found
    assert "npu1/student-work.tar.gz: 5 bytes, the manifest says 400" in found


def test_an_unfinished_backup_an_unknown_host_and_a_missing_part_are_refused(tmp_path):
    root = make(tmp_path)
    assert "not a finished backup" in backup.problems(root, backup.load_manifest(root))[0]
    backup.write_manifest(root)
    m = backup.load_manifest(root)
    assert backup.problems(root, m, host="npu9") == ["the backup has nothing of npu9 (it has cache, npu1)"]
    assert backup.problems(root, m, host="npu1", required=["hub.sqlite", "hub-config.tar.gz"]) == [
        "npu1: the backup has no hub-config.tar.gz"
    ]
    assert backup.problems(root, {"format": 99, "hosts": {}})[0].endswith("format 99, this version reads 1")


def test_a_manifest_naming_a_path_outside_the_backup_is_refused(tmp_path):
    root = make(tmp_path)
    m = backup.write_manifest(root)
    m["hosts"]["npu1"]["../../etc/passwd"] = {"sha256": "x", "size": 1}
    assert "npu1: part name '../../etc/passwd' is not a file name" in backup.problems(root, m, host="npu1")


def test_cli(tmp_path, capsys):
    root = make(tmp_path)
    assert backup.main(["manifest", str(root)]) == 0
    assert json.loads(capsys.readouterr().out) == {"hosts": ["cache", "npu1"], "bytes": 2 + 400 + 5}
    assert backup.main(["verify", str(root), "--host", "npu1", "--part", "hub.sqlite"]) == 0
    assert backup.main(["verify", str(root), "--host", "npu2"]) == 1
    assert "nothing of npu2" in capsys.readouterr().err
    assert backup.main(["verify", str(tmp_path / "nope")]) == 2
