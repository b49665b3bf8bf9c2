"""`ansible-playbook site.yml -i inventory` reads the operator's inventory and nothing else (issue 11)."""

import json
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("ansible-inventory") is None, reason="ansible-inventory not installed")
def test_inventory_dir_is_the_operators_only():
    out = subprocess.run(
        ["ansible-inventory", "-i", "inventory", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inv = json.loads(out)
    hostvars = inv["_meta"]["hostvars"]
    assert set(hostvars) == {"cache1", "npu1", "npu2"}
    assert set(inv["cache_proxy"]["hosts"]) == {"cache1"}
    assert set(inv["npu_servers"]["hosts"]) == {"npu1", "npu2"}
    # nothing of the lab (docker exec connection) leaks into a real site
    for host, hv in hostvars.items():
        assert hv.get("ansible_connection") in (None, "ssh"), (host, hv.get("ansible_connection"))
        assert hv["ansible_host"].startswith("192.0.2."), "placeholders from the documentation range"


def test_no_file_in_inventory_but_the_operators():
    files = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "inventory").rglob("*") if p.is_file())
    assert files == ["inventory/hosts.yml"], files
