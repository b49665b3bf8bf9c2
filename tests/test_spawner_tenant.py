"""Tenant boundary in the spawner (issue 12): user names with `{` through DockerSpawner's real
template code, a deleted user's work archived and their port and NPUs freed, and allocation
serialised across overlapping starts. Needs jupyterhub + dockerspawner (the hub venv)."""

import asyncio
import json
import logging
import os
import random
from types import SimpleNamespace

import pytest

pytest.importorskip("dockerspawner")

from ml_workshop import container  # noqa: E402
from ml_workshop.spawner import WorkshopSpawner  # noqa: E402

ACCESS = {
    "npu_device_pattern": "/dev/davinci{id}",
    "devices": ["/dev/davinci_manager"],
    "mounts": ["/usr/local/dcmi:/usr/local/dcmi:ro"],
}


class Docker:
    """The Docker API calls _allocate makes. `running` is what the daemon lists at the moment
    the call is made; the answer arrives after `delay` seconds (a thread in the real spawner)."""

    def __init__(self, running=(), delay=0.0):
        self.running = set(running)
        self.delay = delay

    async def __call__(self, method, *args, **kwargs):
        assert method == "containers"
        listed = [{"Labels": container.label_values(u, [], 22222)} for u in sorted(self.running)]
        await asyncio.sleep(self.delay() if callable(self.delay) else self.delay)
        return [
            {"Labels": {k: v.replace("{{", "{").replace("}}", "}") for k, v in c["Labels"].items()}}
            for c in listed
        ]


def make(tmp_path, name, docker=None, **kw):
    user = SimpleNamespace(name=name, url=f"/user/{name}/", id=1, escaped_name=name)
    kw.setdefault("npu_policy", "exclusive")
    kw.setdefault("npu_ids", [0, 1, 2, 3])
    sp = WorkshopSpawner(
        user=user,
        npu_access=ACCESS,
        state_file=str(tmp_path / "state.json"),
        work_root=str(tmp_path / "work"),
        content_dir=str(tmp_path / "content{x}"),
        **kw,
    )
    sp.docker = docker or Docker()
    sp.log = logging.getLogger("test-spawner")
    return sp


@pytest.mark.parametrize("name", ["{prefix}", "x{prefix.foo}", "a}{b", "{username}"])
def test_braces_in_a_user_name_reach_docker_unchanged(tmp_path, name):
    sp = make(tmp_path, name)
    # the escaped name DockerSpawner derives has no braces; a name it cannot use is refused
    # before any of this (BAD_NAME), so use one that passes for the path parts
    sp._escaped_name = "x-7bprefix-7d"
    sp.apply_allocation([1, 2], 22230)
    # DockerSpawner's own rendering (create_object calls exactly this)
    kwargs = sp._render_templates(sp.extra_create_kwargs)
    assert kwargs["labels"][container.LABEL_USER] == name
    assert kwargs["labels"][container.LABEL_NPUS] == "1,2"
    host = sp._render_templates(sp.extra_host_config)
    assert host["port_bindings"] == {22: ("0.0.0.0", 22230)}
    assert host["devices"][0] == "/dev/davinci1:/dev/davinci1:rwm"
    # the volume paths go through format_volume_name (str.format without a safety net)
    binds = sp.volume_binds
    assert binds[str(tmp_path / "content{x}")] == {"bind": "/home/student/workshop", "mode": "ro"}
    assert binds[str(tmp_path / "work" / "x-7bprefix-7d")]["bind"] == "/home/student/work"


def test_unescaped_label_would_be_rewritten_or_crash(tmp_path):
    """Why the escaping: DockerSpawner formats every string it is given."""
    sp = make(tmp_path, "bob")
    assert sp._render_templates({"l": "{prefix}"})["l"] == sp.prefix
    with pytest.raises(AttributeError):
        sp._render_templates({"l": "x{prefix.foo}"})


def test_deleting_a_user_archives_work_and_frees_port_and_npus(tmp_path, caplog):
    a = make(tmp_path, "alice")
    ids, port = asyncio.run(a._allocate())
    work = tmp_path / "work" / "alice"
    work.mkdir(parents=True)
    (work / "notebook.ipynb").write_text("{}")
    b = make(tmp_path, "bob", docker=Docker(running=["alice"]))
    asyncio.run(b._allocate())
    with caplog.at_level(logging.INFO, "test-spawner"):
        asyncio.run(make(tmp_path, "alice").delete_forever())
    assert not work.exists()
    (archived,) = (tmp_path / "work" / ".deleted").iterdir()
    assert archived.name.startswith("alice-") and archived.name.endswith("Z")
    assert (archived / "notebook.ipynb").read_text() == "{}"
    assert oct((tmp_path / "work" / ".deleted").stat().st_mode & 0o777) == "0o700"
    st = json.loads((tmp_path / "state.json").read_text())
    assert "alice" not in st["npus"] and "alice" not in st["ssh_ports"] and "bob" in st["ssh_ports"]
    assert "work archived to" in caplog.text
    # a new alice starts clean: no old work, and the allocation is computed afresh
    again = make(tmp_path, "alice", docker=Docker(running=["bob"]))
    assert asyncio.run(again._allocate())[1] != st["ssh_ports"]["bob"]
    assert not work.exists()
    # a second deletion of the same name is archived next to the first
    work.mkdir()
    asyncio.run(make(tmp_path, "alice").delete_forever())
    assert len(list((tmp_path / "work" / ".deleted").iterdir())) == 2


def test_named_server_deletion_keeps_the_users_work(tmp_path, monkeypatch):
    sp = make(tmp_path, "alice")
    monkeypatch.setattr(WorkshopSpawner, "name", property(lambda self: "gpu"))
    (tmp_path / "work" / "alice").mkdir(parents=True)
    asyncio.run(sp.delete_forever())
    assert (tmp_path / "work" / "alice").exists()


def test_a_start_that_ends_while_another_reads_the_list_keeps_its_npus(tmp_path):
    """carol's start is under way (her NPUs recorded, her container not listed yet). dan's
    allocation asks Docker for the running containers; while that answer travels carol's start
    completes (container running, no longer `spawning`). dan must not take carol's NPUs."""
    docker = Docker(delay=0.05)
    carol = make(tmp_path, "carol", docker=docker, npu_ids=[0, 1], npu_per_user=1)
    dan = make(tmp_path, "dan", docker=docker, npu_ids=[0, 1], npu_per_user=1)

    async def scenario():
        WorkshopSpawner._spawning.add("carol")
        try:
            got_carol = (await carol._allocate())[0]
            docker.delay = 0.05
            dan_task = asyncio.create_task(dan._allocate())
            await asyncio.sleep(0.01)  # dan's list request is out: carol is not in it
            docker.running.add("carol")  # carol's container is up ...
        finally:
            WorkshopSpawner._spawning.discard("carol")  # ... and her start returned
        return got_carol, (await dan_task)[0]

    got_carol, got_dan = asyncio.run(scenario())
    assert got_carol == [0] and got_dan == [1]


def test_overlapping_starts_never_share_an_npu(tmp_path):
    """Twelve starts interleaved at random on 4 NPUs (1 each), each through the real _allocate:
    every NPU has at most one owner at any time, and exactly the free ones are given."""
    rng = random.Random(12)
    docker = Docker(delay=lambda: rng.uniform(0, 0.02))
    owners: dict[int, str] = {}
    refused = []

    async def start(name):
        sp = make(tmp_path, name, docker=docker, npu_per_user=1)
        WorkshopSpawner._spawning.add(name)
        try:
            await asyncio.sleep(rng.uniform(0, 0.02))
            try:
                ids, _ = await sp._allocate()
            except Exception as e:  # AllocationError: no free NPU
                refused.append((name, e))
                return
            for i in ids:
                assert i not in owners, f"NPU {i} given to {name} while {owners[i]} holds it"
                owners[i] = name
            await asyncio.sleep(rng.uniform(0, 0.02))
            docker.running.add(name)  # the container is up
        finally:
            WorkshopSpawner._spawning.discard(name)

    async def main():
        await asyncio.gather(*(start(f"s{i:02d}") for i in range(12)))

    asyncio.run(main())
    assert sorted(owners) == [0, 1, 2, 3] and len(refused) == 8
    st = json.loads((tmp_path / "state.json").read_text())
    assert sorted(i for ids in st["npus"].values() for i in ids) == [0, 1, 2, 3]
    assert os.path.exists(tmp_path / "state.json")
