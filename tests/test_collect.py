from ml_workshop import collect


def test_parse_listing_keeps_students_sorted():
    rows = collect.parse_listing(
        ["bob 3 2048", "alice 12 1048576", "garbage", "x y z", "..evil 1 1", "carol 0 4096", ""]
    )
    assert [r["name"] for r in rows] == ["alice", "bob", "carol"]
    assert rows[0] == {"name": "alice", "files": 12, "bytes": 1048576}


def test_summary_table():
    rows = collect.parse_listing(["alice 12 1048576", "bob 3 2048"])
    text = collect.summary_table(rows, "npu1", "2026-11-29T07:00:00Z")
    lines = text.splitlines()
    assert lines[0] == "# Students' work collected from npu1 (2026-11-29T07:00:00Z)"
    assert "| alice | 12 | 1.0 MiB | alice.tar.gz |" in lines
    assert "| bob | 3 | 2.0 KiB | bob.tar.gz |" in lines
    assert lines[-1] == "| **2 students** | 15 | 1.0 MiB | |"
    assert collect.summary_table([], "npu2").splitlines()[-1] == "| **0 students** | 0 | 0 B | |"


def test_human_size():
    assert collect.human_size(0) == "0 B"
    assert collect.human_size(1536) == "1.5 KiB"
    assert collect.human_size(5 * 1024**3) == "5.0 GiB"
