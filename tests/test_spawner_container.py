import pytest

from ml_workshop import container
from ml_workshop.container import connection_details

ACCESS = {
    "npu_device_pattern": "/dev/davinci{id}",
    "devices": ["/dev/davinci_manager", "/dev/devmm_svm", "/dev/hisi_hdc"],
    "mounts": ["/usr/local/dcmi:/usr/local/dcmi:ro", "/usr/local/Ascend/driver:/usr/local/Ascend/driver:ro"],
}


def test_container_name():
    assert container.container_name("alice") == "ml-workshop-user-alice"


@pytest.mark.parametrize("bad", ["../etc", "", "a/b", ".hidden", "Alice"])
def test_unsafe_names_rejected(bad):
    with pytest.raises(ValueError):
        container.work_dir("/srv/w", bad)


def test_volumes_only_own_work_dir_and_content_ro():
    v = container.volumes("/srv/w", "alice", "/srv/content")
    assert v == {
        "/srv/w/alice": {"bind": "/home/student/work", "mode": "rw"},
        "/srv/content": {"bind": "/home/student/workshop", "mode": "ro"},
    }
    assert container.volumes("/srv/w", "bob", "") == {
        "/srv/w/bob": {"bind": "/home/student/work", "mode": "rw"}
    }


def test_docker_socket_refused():
    with pytest.raises(ValueError):
        container.check_no_docker_socket({"/var/run/docker.sock": {"bind": "/x"}})


def test_host_config_devices_caps_limits():
    cfg = container.host_config(
        npu_ids=[2, 1],
        npu_access=ACCESS,
        npu_runtime="devices",
        ssh_port=22223,
        pids_limit=512,
        shm_size="2g",
    )
    assert cfg["devices"] == [
        "/dev/davinci1:/dev/davinci1:rwm",
        "/dev/davinci2:/dev/davinci2:rwm",
        "/dev/davinci_manager:/dev/davinci_manager:rwm",
        "/dev/devmm_svm:/dev/devmm_svm:rwm",
        "/dev/hisi_hdc:/dev/hisi_hdc:rwm",
    ]
    assert (
        cfg["cap_drop"] == ["ALL"] and "DAC_OVERRIDE" in cfg["cap_add"] and "SYS_ADMIN" not in cfg["cap_add"]
    )
    assert cfg["privileged"] is False
    assert cfg["pids_limit"] == 512 and cfg["shm_size"] == "2g"
    assert cfg["port_bindings"] == {22: ("0.0.0.0", 22223)}
    assert "runtime" not in cfg


def test_host_config_without_npus_has_no_devices():
    cfg = container.host_config(npu_ids=[], npu_access=ACCESS, npu_runtime="devices", ssh_port=22222)
    assert "devices" not in cfg
    assert container.npu_binds([], ACCESS) == {}


def test_ascend_runtime_uses_env_not_devices():
    cfg = container.host_config(npu_ids=[0, 3], npu_access=ACCESS, npu_runtime="ascend", ssh_port=22222)
    assert cfg["runtime"] == "ascend" and "devices" not in cfg
    env = container.environment(npu_ids=[3, 0], ssh_port=22222, ssh_host="npu1")
    assert env["ASCEND_VISIBLE_DEVICES"] == "0,3"


def test_npu_binds_read_only():
    assert container.npu_binds([0], ACCESS)["/usr/local/dcmi"] == {"bind": "/usr/local/dcmi", "mode": "ro"}


def test_environment_merges_cache_settings():
    env = container.environment(
        npu_ids=[1],
        ssh_port=22230,
        ssh_host="h",
        extra_env={"PIP_INDEX_URL": "http://c:3141/root/pypi/+simple/"},
    )
    assert env == {
        "PIP_INDEX_URL": "http://c:3141/root/pypi/+simple/",
        "ASCEND_VISIBLE_DEVICES": "1",
        "MLW_SSH_PORT": "22230",
        "MLW_SSH_HOST": "h",
    }


def test_labels():
    assert container.format_escape(container.label_values("bob", [1, 0], 22224)) == {
        "ml-workshop.user": "bob",
        "ml-workshop.npus": "0,1",
        "ml-workshop.ssh-port": "22224",
    }


def test_connection_details_vscode_snippet():
    d = connection_details("bob", {"ssh_ports": {"bob": 22224}, "npus": {"bob": [1]}}, "npu1.lab")
    assert d["command"] == "ssh -p 22224 root@npu1.lab"
    assert "Host ml-workshop-bob\n    HostName npu1.lab\n    Port 22224\n    User root\n" == d["vscode"]
    assert connection_details("eve", {"ssh_ports": {}}, "h") is None


def test_init_on():
    from ml_workshop import container

    assert container.host_config(npu_ids=[], npu_access={}, npu_runtime="devices", ssh_port=1)["init"] is True


def test_containers_are_never_auto_removed():
    """dockerd deletes auto-remove containers when it restarts (even with live-restore):
    the student's server must survive a Docker restart, so the spawner removes it itself."""
    cfg = container.host_config(npu_ids=[0], npu_access=ACCESS, npu_runtime="devices", ssh_port=22222)
    assert cfg["auto_remove"] is False


def test_image_runs_init_reads_the_entrypoint():
    assert container.image_runs_init({"Entrypoint": ["/usr/bin/tini", "-g", "--", "x"]})
    assert container.image_runs_init({"Entrypoint": ["tini-static", "--"]})
    assert container.image_runs_init({"Entrypoint": "/sbin/docker-init -- x"})
    assert not container.image_runs_init({"Entrypoint": ["/usr/local/bin/tini-wrapper"]})
    assert not container.image_runs_init({"Entrypoint": None, "Cmd": ["tini"]})
    assert not container.image_runs_init({})
    assert not container.image_runs_init(None)
    assert not container.image_runs_init({"Entrypoint": [1]})


def test_instructor_volumes():
    """A hub admin: content rw and every student's work at ~/students (ro by default); a student
    never gets either, whatever the settings."""
    v = container.volumes("/srv/w", "teacher", "/srv/content", instructor=True)
    assert v["/srv/w/teacher"] == {"bind": "/home/student/work", "mode": "rw"}
    assert v["/srv/content"] == {"bind": "/home/student/workshop", "mode": "rw"}
    assert v["/srv/w"] == {"bind": "/home/student/students", "mode": "ro"}
    v = container.volumes(
        "/srv/w/", "teacher", "/srv/content", instructor=True, students_work="rw", content_writable=False
    )
    assert v["/srv/content"]["mode"] == "ro" and v["/srv/w"]["mode"] == "rw"
    v = container.volumes("/srv/w", "teacher", "/srv/content", instructor=True, students_work="none")
    assert set(v) == {"/srv/w/teacher", "/srv/content"}
    for kw in ({}, {"students_work": "rw"}, {"content_writable": True}):
        v = container.volumes("/srv/w", "alice", "/srv/content", **kw)
        assert set(v) == {"/srv/w/alice", "/srv/content"} and v["/srv/content"]["mode"] == "ro"
    with pytest.raises(ValueError, match="students_work"):
        container.volumes("/srv/w", "teacher", "/srv/content", instructor=True, students_work="all")


def test_work_archive_is_the_users_own_directory_only(tmp_path):
    pytest.importorskip("jupyterhub")
    import subprocess
    import tarfile

    from ml_workshop.handlers import work_archive_argv

    root = tmp_path / "student-work"
    (root / "alice").mkdir(parents=True)
    (root / "bob").mkdir()
    (root / "alice" / "notes.txt").write_text("mine\n")
    (root / "bob" / "secret.txt").write_text("bob's\n")
    (root / "alice" / "steal").symlink_to(root / "bob" / "secret.txt")
    argv = work_archive_argv(str(root), "alice")
    assert argv[-2:] == ["--", "alice"]
    out = tmp_path / "a.tar.gz"
    out.write_bytes(subprocess.run(argv, capture_output=True, check=True).stdout)
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"alice", "alice/notes.txt", "alice/steal"}
        assert members["alice/steal"].issym()  # a link, not bob's file
    for bad in ("../bob", "alice/../bob", ""):
        with pytest.raises(ValueError):
            work_archive_argv(str(root), bad)
