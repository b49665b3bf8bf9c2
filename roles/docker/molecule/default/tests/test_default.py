"""Docker role: the engine runs, daemon.json carries the configured values, a container runs
from an image loaded without a registry, and live-restore keeps it through a daemon restart."""

import json
import time


def test_docker_service_active_and_enabled(host):
    svc = host.service("docker")
    assert svc.is_running
    assert svc.is_enabled


def test_daemon_json_values(host):
    f = host.file("/etc/docker/daemon.json")
    assert f.user == "root" and f.mode == 0o644
    cfg = json.loads(f.content_string)
    assert cfg["log-driver"] == "json-file"
    assert cfg["log-opts"] == {"max-size": "20m", "max-file": "5"}
    assert cfg["live-restore"] is True
    assert cfg["registry-mirrors"] == ["https://mirror.example.test"]
    assert cfg["insecure-registries"] == ["registry.lab.test:5000"]
    assert cfg["default-address-pools"] == [{"base": "172.80.0.0/16", "size": 24}]
    # docker_daemon_runtimes defaults to the ascend_docker_runtime role's local fact (prepare.yml)
    assert cfg["runtimes"] == {"ascend": {"path": "/usr/sbin/runc", "runtimeArgs": []}}
    assert "default-runtime" not in cfg  # runc stays the default unless docker_daemon_default_runtime says so


def test_daemon_runs_with_the_configuration(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"
    assert "https://mirror.example.test/" in info["RegistryConfig"]["Mirrors"]
    assert info["Driver"] == "overlay2"
    assert "ascend" in info["Runtimes"] and info["DefaultRuntime"] == "runc"


def test_proxy_drop_in(host):
    f = host.file("/etc/systemd/system/docker.service.d/http-proxy.conf")
    assert "Managed by ml-workshop" in f.content_string
    env = host.check_output("systemctl show docker --property=Environment")
    assert "HTTP_PROXY=http://proxy.example.test:3128" in env
    assert "NO_PROXY=localhost,127.0.0.1,.lab.test" in env


def test_admin_in_docker_group(host):
    assert "docker" in host.user("mlwadmin").groups


def _load_busybox(host):
    host.check_output("docker load -i /root/busybox.tar")


def test_container_runs_from_loaded_image(host):
    _load_busybox(host)
    out = host.check_output("docker run --rm ml-workshop/busybox:latest echo hello-from-nested")
    assert out.strip() == "hello-from-nested"


def test_live_restore_keeps_containers_through_restart(host):
    _load_busybox(host)
    host.run("docker rm -f mlw-live-restore")
    host.check_output("docker run -d --name mlw-live-restore ml-workshop/busybox:latest sleep 600")
    started = host.check_output("docker inspect -f '{{.State.StartedAt}}' mlw-live-restore")
    pid_before = host.check_output("docker inspect -f '{{.State.Pid}}' mlw-live-restore")
    host.check_output("systemctl restart docker")
    for _ in range(30):
        if host.run("docker info").rc == 0:
            break
        time.sleep(1)
    assert host.check_output("docker inspect -f '{{.State.Running}}' mlw-live-restore") == "true"
    assert host.check_output("docker inspect -f '{{.State.StartedAt}}' mlw-live-restore") == started
    assert host.check_output("docker inspect -f '{{.State.Pid}}' mlw-live-restore") == pid_before
    host.run("docker rm -f mlw-live-restore")
