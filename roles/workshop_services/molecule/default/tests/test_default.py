"""workshop_services role: ml-workshop-hcie and ml-workshop-openclaw run as containers of their
systemd units, with the configured mounts, ports and devices; HCIE holds exactly the EMULATED
NPUs it is configured for (1 and 3 of the host's 0-3) and the role publishes them; OpenClaw's
generated token is private and is the one its gateway accepts; the HCIE environments run; both
containers come back after a killed process and after `systemctl restart docker`."""

import json
import re
import shlex
import time

import pytest

HCIE = "ml-workshop-hcie"
OPENCLAW = "ml-workshop-openclaw"
OC_DIR = "/etc/ml-workshop/openclaw"
OC_PORT = 18790
HCIE_ENV_FILE = "/etc/ml-workshop/hcie/hcie.env"
HCIE_ENV_VALUE = "set-by-the-role"  # molecule.yml: workshop_services_hcie_env


def wait_for(host, cmd, timeout=90, interval=2):
    deadline = time.time() + timeout
    while True:
        r = host.run(cmd)
        if r.rc == 0:
            return r
        if time.time() > deadline:
            raise AssertionError(f"timed out: {cmd}: {r.stdout} {r.stderr}")
        time.sleep(interval)


def inspect(host, name):
    return json.loads(host.check_output(f"docker inspect {name}"))[0]


def mounts(container):
    return {m["Destination"]: (m["Source"], m["RW"]) for m in container["Mounts"]}


def token(host):
    return host.file(f"{OC_DIR}/gateway-token").content_string.strip()


@pytest.mark.parametrize("name", [HCIE, OPENCLAW])
def test_container_runs_under_its_unit(host, name):
    svc = host.service(name)
    assert svc.is_running and svc.is_enabled
    props = svc.systemd_properties
    assert props["Restart"] == "always"
    assert "docker.service" in props["Requires"].split()
    assert "Managed by ml-workshop" in host.file(f"/etc/systemd/system/{name}.service").content_string
    # The unit's main process is the `docker run` of this very container.
    cmdline = host.check_output(f"tr '\\0' '\\n' < /proc/{props['MainPID']}/cmdline").splitlines()
    assert cmdline[:5] == ["/usr/bin/docker", "run", "--rm", "--name", name]
    wait_for(host, f"test \"$(docker inspect --format '{{{{.State.Running}}}}' {name})\" = true", timeout=60)
    c = inspect(host, name)
    assert c["Config"]["Labels"]["org.ml-workshop.service"] == name
    assert c["HostConfig"]["AutoRemove"] is True and c["HostConfig"]["Privileged"] is False


def test_hcie_mounts_ports_env(host):
    c = inspect(host, HCIE)
    m = mounts(c)
    assert m["/workspace"] == ("/var/lib/ml-workshop/hcie/workspace", True)
    assert m["/datasets"] == ("/srv/mlw-test/datasets", False)
    # the driver paths of ansible_local.ascend.container_access, read-only
    assert m["/usr/local/dcmi"] == ("/usr/local/dcmi", False)
    assert m["/usr/local/Ascend/driver"] == ("/usr/local/Ascend/driver", False)
    assert c["HostConfig"]["PortBindings"] == {"8888/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18888"}]}
    assert "MLW_TEST_ENV=set-by-the-role" in c["Config"]["Env"]
    out = host.check_output(f"docker exec {HCIE} cat /usr/local/Ascend/driver/version.info /datasets/README")
    assert "emulation" in out and "mlw-test dataset" in out
    assert host.run(f"docker exec {HCIE} touch /usr/local/Ascend/driver/x").rc != 0


def test_hcie_env_only_in_its_private_env_file(host):
    f = host.file(HCIE_ENV_FILE)
    assert f.user == "root" and f.group == "root" and f.mode == 0o600
    assert f"MLW_TEST_ENV={HCIE_ENV_VALUE}\n" in f.content_string
    # The unit passes the file (--env-file), never the value: not in the world-readable unit file,
    # not on the `docker run` command line that every local user sees in ps.
    unit = host.file(f"/etc/systemd/system/{HCIE}.service").content_string
    assert f"--env-file={HCIE_ENV_FILE}" in unit.split()
    assert HCIE_ENV_VALUE not in unit and "MLW_TEST_ENV" not in unit
    pid = host.service(HCIE).systemd_properties["MainPID"]
    cmdline = host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/cmdline").splitlines()
    assert f"--env-file={HCIE_ENV_FILE}" in cmdline
    ps = host.check_output("ps -ww -eo args")
    assert f"--env-file={HCIE_ENV_FILE}" in ps  # the unit's docker run is listed
    assert HCIE_ENV_VALUE not in ps


def test_hcie_workspace_is_the_host_directory(host):
    host.check_output(f"docker exec {HCIE} sh -c 'echo kept > /workspace/mlw-verify'")
    assert host.file("/var/lib/ml-workshop/hcie/workspace/mlw-verify").content_string == "kept\n"
    host.run("rm -f /var/lib/ml-workshop/hcie/workspace/mlw-verify")


def test_hcie_holds_exactly_its_configured_npus(host):
    c = inspect(host, HCIE)
    assert sorted(d["PathOnHost"] for d in c["HostConfig"]["Devices"]) == [
        "/dev/davinci1",
        "/dev/davinci3",
        "/dev/davinci_manager",
        "/dev/devmm_svm",
        "/dev/hisi_hdc",
    ]
    inside = host.check_output(f"docker exec {HCIE} sh -c 'ls /dev | grep -E \"^(davinci|devmm|hisi)\"'")
    assert sorted(inside.split()) == ["davinci1", "davinci3", "davinci_manager", "devmm_svm", "hisi_hdc"]
    host.check_output(f"docker exec {HCIE} sh -c 'test -c /dev/davinci1 && test -c /dev/davinci3'")


def test_npus_and_ports_of_the_services_published(host):
    """The hub's contract: the NPUs the services hold, and the host ports they publish (HCIE's
    127.0.0.1:18888:8888, OpenClaw's 18790), which students' SSH and profile ports skip."""
    f = host.file("/etc/ansible/facts.d/workshop_services.fact")
    assert f.user == "root" and f.mode == 0o644
    assert json.loads(f.content_string) == {"npu_ids": [1, 3], "ports": [18888, 18790]}


def test_openclaw_mounts_ports_and_state(host):
    c = inspect(host, OPENCLAW)
    m = mounts(c)
    assert m["/etc/openclaw"] == (f"{OC_DIR}/config", False)
    assert m["/var/lib/openclaw"] == ("/var/lib/ml-workshop/openclaw", True)
    assert c["HostConfig"]["PortBindings"] == {f"{OC_PORT}/tcp": [{"HostIp": "", "HostPort": str(OC_PORT)}]}
    state = host.file("/var/lib/ml-workshop/openclaw")
    assert state.uid == 1000 and state.gid == 1000 and state.mode == 0o700
    cfg = json.loads(host.file(f"{OC_DIR}/config/openclaw.json").content_string)
    assert cfg["gateway"]["port"] == OC_PORT and cfg["gateway"]["auth"] == {"mode": "token"}


def test_openclaw_token_private_and_given_to_the_container(host):
    for path in (f"{OC_DIR}/gateway-token", f"{OC_DIR}/openclaw.env"):
        f = host.file(path)
        assert f.user == "root" and f.group == "root" and f.mode == 0o600
    assert re.fullmatch(r"[A-Za-z0-9]{40}", token(host))
    env = host.file(f"{OC_DIR}/openclaw.env").content_string
    assert f"OPENCLAW_GATEWAY_TOKEN={token(host)}\n" in env
    assert "MLW_TEST_API_KEY=test-secret-never-in-image\n" in env
    cenv = inspect(host, OPENCLAW)["Config"]["Env"]
    assert f"OPENCLAW_GATEWAY_TOKEN={token(host)}" in cenv
    # Secrets reach the container through --env-file only: not in the unit, not in the image.
    unit = host.file(f"/etc/systemd/system/{OPENCLAW}.service").content_string
    image = host.check_output(f"docker image inspect {OPENCLAW}:latest")
    for secret in (token(host), "test-secret-never-in-image"):
        assert secret not in unit and secret not in image


def test_openclaw_gateway_answers_on_the_published_port(host):
    r = wait_for(host, f"curl -fsS http://127.0.0.1:{OC_PORT}/healthz", timeout=120, interval=2)
    assert json.loads(r.stdout)["ok"] is True


def test_openclaw_gateway_accepts_the_token_and_only_it(host):
    wait_for(host, f"curl -fsS http://127.0.0.1:{OC_PORT}/healthz", timeout=120, interval=2)
    probe = f"docker exec {OPENCLAW} openclaw gateway probe --url ws://127.0.0.1:{OC_PORT} --token "
    good = host.check_output(probe + shlex.quote(token(host)))
    assert "Connect: ok" in good and "token mismatch" not in good
    bad = host.run(probe + "not-the-workshop-token")
    assert "token mismatch" in bad.stdout + bad.stderr


def test_hcie_environments_run_in_the_service(host):
    wait_for(host, f"docker exec {HCIE} true", timeout=60)
    for env, mod in (("env0", "six"), ("env1", "packaging")):  # the images recipe's HCIE environments
        host.check_output(f"docker exec {HCIE} /opt/envs/{env}/bin/python -c 'import {mod}'")


def container_id(host, name):
    return host.check_output(f"docker inspect --format '{{{{.Id}}}}' {name}")


@pytest.mark.parametrize("name", [HCIE, OPENCLAW])
def test_service_comes_back_after_kill(host, name):
    old = container_id(host, name)
    pid = host.check_output(f"docker inspect --format '{{{{.State.Pid}}}}' {name}")
    host.check_output(f"kill -9 {pid}")
    wait_for(
        host,
        f"test \"$(docker inspect --format '{{{{.Id}}}} {{{{.State.Running}}}}' {name} 2>/dev/null)\" != '{old} true' "
        f"&& test \"$(docker inspect --format '{{{{.State.Running}}}}' {name})\" = true",
        timeout=90,
    )
    assert host.service(name).is_running


def test_services_come_back_after_docker_restart(host):
    old = {n: container_id(host, n) for n in (HCIE, OPENCLAW)}
    host.check_output("systemctl restart docker")
    for name in old:
        wait_for(
            host,
            f"test \"$(docker inspect --format '{{{{.State.Running}}}}' {name} 2>/dev/null)\" = true",
            timeout=120,
        )
        assert host.service(name).is_running
    wait_for(host, f"curl -fsS http://127.0.0.1:{OC_PORT}/healthz", timeout=120, interval=3)
    wait_for(host, f"docker exec {HCIE} /opt/envs/env0/bin/python -c 'import six'", timeout=60)
    # the NPUs are the configured ones again after the restart
    assert sorted(d["PathOnHost"] for d in inspect(host, HCIE)["HostConfig"]["Devices"])[:2] == [
        "/dev/davinci1",
        "/dev/davinci3",
    ]
