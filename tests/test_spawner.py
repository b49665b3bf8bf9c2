"""WorkshopSpawner wiring, without Docker: the Docker API call is replaced by a fake.
Needs jupyterhub + dockerspawner (the hub venv); skipped where they are not installed."""

import asyncio
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


def make(tmp_path, name, running=(), **kw):
    user = SimpleNamespace(name=name, url=f"/user/{name}/", id=1, escaped_name=name)
    sp = WorkshopSpawner(
        user=user,
        npu_ids=[0, 1, 2, 3],
        npu_access=ACCESS,
        state_file=str(tmp_path / "state.json"),
        work_root=str(tmp_path / "work"),
        content_dir="/srv/content",
        **kw,
    )

    async def fake_docker(method, *args, **kwargs):
        assert method == "containers"
        return [{"Labels": {container.LABEL_USER: u}} for u in running]

    sp.docker = fake_docker
    return sp


def test_exclusive_allocation_persists_and_prunes_stopped(tmp_path):
    a = make(tmp_path, "alice", npu_policy="exclusive", npu_per_user=2)
    ids, port = asyncio.run(a._allocate())
    assert (ids, port) == ([0, 1], 22222)
    b = make(tmp_path, "bob", running=["alice"], npu_policy="exclusive", npu_per_user=2)
    assert asyncio.run(b._allocate()) == ([2, 3], 22223)
    # alice's container is gone (crash): her NPUs are free again for carol, her port stays hers
    c = make(tmp_path, "carol", running=["bob"], npu_policy="exclusive", npu_per_user=2)
    assert asyncio.run(c._allocate()) == ([0, 1], 22224)


def test_apply_allocation_sets_docker_settings(tmp_path):
    sp = make(tmp_path, "alice", npu_policy="shared", container_env={"PIP_INDEX_URL": "http://c/"})
    sp.apply_allocation([0, 1, 2, 3], 22222)
    assert sp.extra_host_config["cap_drop"] == ["ALL"]
    assert "/dev/davinci3:/dev/davinci3:rwm" in sp.extra_host_config["devices"]
    assert sp.volumes[str(tmp_path / "work" / "alice")]["mode"] == "rw"
    assert sp.volumes["/usr/local/dcmi"]["mode"] == "ro"
    assert sp.environment["ASCEND_VISIBLE_DEVICES"] == "0,1,2,3"
    assert sp.environment["PIP_INDEX_URL"] == "http://c/"
    assert sp.extra_create_kwargs["labels"]["ml-workshop.ssh-port"] == "22222"
    assert sp.name_template.format(username="alice") == "ml-workshop-user-alice"


def test_poll_finding_the_server_gone_releases_its_npus(tmp_path, monkeypatch):
    """After a reboot or a removed container JupyterHub's startup check marks the server
    stopped without calling stop(): poll() releases the NPUs itself."""
    from dockerspawner import DockerSpawner

    a = make(tmp_path, "alice", npu_policy="exclusive", npu_per_user=2)
    asyncio.run(a._allocate())
    assert a.store.load()["npus"] == {"alice": [0, 1]}

    async def running(self):
        return None

    async def gone(self):
        return 137

    monkeypatch.setattr(DockerSpawner, "poll", running)
    assert asyncio.run(a.poll()) is None
    assert a.store.load()["npus"] == {"alice": [0, 1]}
    monkeypatch.setattr(DockerSpawner, "poll", gone)
    assert asyncio.run(a.poll()) == 137
    assert a.store.load()["npus"] == {}
    assert a.store.load()["ssh_ports"] == {"alice": 22222}, "the SSH port stays the student's"


@pytest.mark.parametrize(
    ("setting", "entrypoint", "expected"),
    [
        (None, ["/usr/bin/tini", "-g", "--", "/usr/local/bin/mlw-user-start"], False),
        (None, "/usr/bin/dumb-init -- start", False),
        (None, ["/usr/local/bin/start-notebook.sh"], True),
        (None, None, True),
        (True, ["/usr/bin/tini", "--"], True),
        (False, None, False),
    ],
)
def test_docker_init_only_when_the_image_has_none(tmp_path, setting, entrypoint, expected):
    sp = make(tmp_path, "alice", docker_init=setting, image="mlw/user:1")
    calls = []

    async def fake_docker(method, *args, **kwargs):
        calls.append((method, args))
        assert method == "inspect_image"
        return {"Config": {"Entrypoint": entrypoint}}

    sp.docker = fake_docker
    init = asyncio.run(sp._use_docker_init())
    assert init is expected
    sp.apply_allocation([0], 22222, init=init)
    assert sp.extra_host_config["init"] is expected
    assert calls == ([] if setting is not None else [("inspect_image", ("mlw/user:1",))])


def test_docker_init_when_the_image_cannot_be_inspected(tmp_path):
    from docker import errors

    sp = make(tmp_path, "alice", image="missing:1")

    async def fake_docker(method, *args, **kwargs):
        raise errors.ImageNotFound("no such image")

    sp.docker = fake_docker
    assert asyncio.run(sp._use_docker_init()) is True


def test_admin_gets_the_instructors_mounts(tmp_path):
    sp = make(tmp_path, "teacher", npu_policy="shared")
    sp.user.admin = True
    sp.apply_allocation([0], 22222)
    assert sp.volumes[str(tmp_path / "work")]["bind"] == "/home/student/students"
    assert sp.volumes["/srv/content"]["mode"] == "rw"
    st = make(tmp_path, "alice", npu_policy="shared")
    st.user.admin = False
    st.apply_allocation([0], 22223)
    assert str(tmp_path / "work") not in st.volumes and st.volumes["/srv/content"]["mode"] == "ro"
