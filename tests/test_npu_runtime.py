"""The EMULATED Ascend Docker Runtime's spec edits (test fixture; what the real runtime does on
`create`: roles/ascend_driver/molecule/resources/emulation/payload/ascend-docker-runtime)."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from scriptload import load_script

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "roles/ascend_driver/molecule/resources/emulation/payload/ascend-docker-runtime"
rt = load_script(SCRIPT, "emulated_ascend_docker_runtime")

DEVNODES = {f"/dev/davinci{i}": (236, i) for i in range(4)} | {
    "/dev/davinci_manager": (237, 0),
    "/dev/devmm_svm": (238, 0),
    "/dev/hisi_hdc": (239, 0),
}
LISTS = {
    "base": ["/usr/local/Ascend/driver/lib64", "/usr/local/bin/npu-smi", "/var/queue_schedule"],
    "extra": ["/data"],
}


def fake_stat(path):
    """A character device's stat with the given numbers (fields from a real node, /dev/null)."""
    if path not in DEVNODES:
        return None
    fields = list(os.stat("/dev/null"))
    fields[0] = stat.S_IFCHR | 0o660  # st_mode
    fields[5] = 1000  # st_gid (HwHiAiUser)
    return os.stat_result(fields, {"st_rdev": os.makedev(*DEVNODES[path])})


def spec_with(*env):
    return {
        "process": {"env": ["PATH=/usr/bin", *env]},
        "linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]}},
        "mounts": [],
    }


def edit(*env, exists=lambda p: p != "/var/queue_schedule"):
    return rt.edit_spec(spec_with(*env), fake_stat, LISTS, exists)


def paths(spec):
    return [d["path"] for d in spec["linux"]["devices"]]


def test_parse_visible_devices_like_the_real_runtime():
    assert rt.parse_visible_devices("1") == [1]
    assert rt.parse_visible_devices("3,1,1") == [1, 3]
    assert rt.parse_visible_devices("0-2,5") == [0, 1, 2, 5]
    assert rt.parse_visible_devices("Ascend910-2") == [2]
    for bad in ("all", "ALL", "1,all", "x", "2-1", "0-129", "-1", "1;2"):
        with pytest.raises(rt.RefusedError):
            rt.parse_visible_devices(bad)
    with pytest.raises(rt.RefusedError, match="invalid single device parameter: all"):
        rt.parse_visible_devices("all")


def test_exactly_the_listed_npus_and_the_management_nodes():
    spec = edit("ASCEND_VISIBLE_DEVICES=2")
    assert paths(spec) == ["/dev/davinci2", "/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"]
    d = spec["linux"]["devices"][0]
    assert (d["type"], d["major"], d["minor"], d["fileMode"], d["gid"]) == ("c", 236, 2, 0o660, 1000)
    rules = spec["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}  # Docker's deny-all stays first
    assert {"allow": True, "type": "c", "major": 236, "minor": 2, "access": "rwm"} in rules
    assert not any(r.get("minor") == 0 and r.get("major") == 236 for r in rules)  # not davinci0
    assert "ASCEND_DOCKER_RUNTIME=True" in spec["process"]["env"]
    # the driver files: existing paths of base.list, read-only, nosuid
    assert [m["destination"] for m in spec["mounts"]] == [
        "/usr/local/Ascend/driver/lib64",
        "/usr/local/bin/npu-smi",
    ]
    assert all(set(m["options"]) >= {"ro", "nosuid"} for m in spec["mounts"])


@pytest.mark.parametrize("value", [None, "", "void"])
def test_no_visible_devices_no_device_no_mount(value):
    spec = edit(*([] if value is None else [f"ASCEND_VISIBLE_DEVICES={value}"]))
    assert "devices" not in spec["linux"] and spec["mounts"] == []
    assert "ASCEND_DOCKER_RUNTIME=True" in spec["process"]["env"]


def test_an_id_the_host_lacks_and_all_fail_the_creation():
    with pytest.raises(rt.RefusedError, match="/dev/davinci7"):
        edit("ASCEND_VISIBLE_DEVICES=7")
    with pytest.raises(rt.RefusedError, match="all"):
        edit("ASCEND_VISIBLE_DEVICES=all")


def test_mount_lists_and_options():
    assert edit("ASCEND_VISIBLE_DEVICES=0", "ASCEND_RUNTIME_OPTIONS=NODRV")["mounts"] == []
    spec = edit("ASCEND_VISIBLE_DEVICES=0", "ASCEND_RUNTIME_MOUNTS=extra")
    assert [m["destination"] for m in spec["mounts"]] == ["/data"]  # naming a list replaces base
    with pytest.raises(rt.RefusedError):
        edit("ASCEND_VISIBLE_DEVICES=0", "ASCEND_RUNTIME_OPTIONS=FAST")


def test_the_last_value_wins_and_a_device_given_twice_is_added_once():
    spec = spec_with("ASCEND_VISIBLE_DEVICES=0", "ASCEND_VISIBLE_DEVICES=1")
    spec["linux"]["devices"] = [{"path": "/dev/davinci1", "type": "c", "major": 236, "minor": 1}]
    out = rt.edit_spec(spec, fake_stat, LISTS, lambda p: True)
    assert paths(out).count("/dev/davinci1") == 1 and "/dev/davinci0" not in paths(out)


def test_bundle_argument_and_commands_other_than_create_go_straight_to_runc(tmp_path):
    assert rt.bundle_of(["--root", "/r", "create", "--bundle", "/b", "id"]) == "/b"
    assert rt.bundle_of(["create", "-b", "/c", "id"]) == "/c"
    assert rt.bundle_of(["create", "--bundle=/d", "id"]) == "/d"
    # the whole program: a fake runc on PATH records its arguments; the spec is edited on create
    (tmp_path / "runc").write_text('#!/bin/sh\necho "$@" > "$RUNC_ARGS"\n')
    (tmp_path / "runc").chmod(0o755)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec_with("ASCEND_VISIBLE_DEVICES=")))
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}", RUNC_ARGS=str(tmp_path / "args"))
    p = subprocess.run([sys.executable, SCRIPT, "--log", "x", "create", "--bundle", bundle, "c1"], env=env)
    assert p.returncode == 0
    assert (tmp_path / "args").read_text().split() == ["--log", "x", "create", "--bundle", str(bundle), "c1"]
    assert "ASCEND_DOCKER_RUNTIME=True" in json.loads((bundle / "config.json").read_text())["process"]["env"]
    (bundle / "config.json").write_text(json.dumps(spec_with("ASCEND_VISIBLE_DEVICES=all")))
    log = tmp_path / "log.json"
    p = subprocess.run(
        [sys.executable, SCRIPT, "--log", log, "--log-format", "json", "create", "--bundle", bundle, "c2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 1 and "invalid single device parameter: all" in p.stderr
    # where containerd's shim reads a runtime's error: runc's JSON log lines
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "invalid single device parameter: all" in entry["msg"]
    p = subprocess.run([sys.executable, SCRIPT, "state", "c1"], env=env)
    assert p.returncode == 0 and (tmp_path / "args").read_text().split() == ["state", "c1"]
