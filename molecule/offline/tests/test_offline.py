"""Issue 16: a whole workshop converged from the offline bundle, on a network with no route out.

The instance (cache host and NPU server, 2 EMULATED NPUs) sits on a Docker network created
``internal: true``; prepare.yml built the bundle with bundle.yml on the control node, converge ran
site.yml with ``workshop_offline_bundle`` (and molecule's idempotence step ran it again). Here:
nothing can leave the network, apt reads only the bundle, every service came from the bundle, and
a student signs up, is approved, starts, pip installs a package of the bundle and fails cleanly on
one that is not in it.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import requests
import testinfra

PREFIX = os.environ.get("MLW_INSTANCE_PREFIX", "mlw")
NAME = f"{PREFIX}-offline"
NETWORK = f"{PREFIX}-offline-net"
BUNDLE = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "bundle"
STUDENT = "olivia"
PASSWORD = "Offline-Workshop-2026"
IN_BUNDLE = "pyjokes==0.8.3"  # images_bundle_student_packages of molecule.yml
NOT_IN_BUNDLE = "cowsay"
DB = "/var/lib/jupyterhub/jupyterhub.sqlite"


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host(f"docker://{NAME}")


def address_of(container: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def base():
    return f"http://{address_of(NAME)}:28000"


@pytest.fixture(scope="module")
def outside():
    """ "The internet" as this machine can show it without sending anything to anybody: a web
    server (the harness's busybox) on Docker's default bridge, a network with a route out."""
    name = f"{PREFIX}-outside"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--name",
            name,
            "ml-workshop/busybox:latest",
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            "/",
        ],
        capture_output=True,
        check=True,
    )
    address = address_of(name)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:  # control: the control node reaches it
            requests.get(f"http://{address}:8080/", timeout=3)
            break
        except requests.RequestException:
            time.sleep(1)
    else:
        pytest.fail("the outside web server did not answer the control node")
    yield address
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def manifest():
    return json.loads((BUNDLE / "manifest.json").read_text(encoding="utf-8"))


def connect_probe(target: str, port: int, python: str = "python3") -> str:
    return (
        f"{python} -c 'import socket,sys\n"
        "try:\n"
        f'    socket.create_connection(("{target}", {port}), 5); print("CONNECTED")\n'
        "except OSError as e:\n"
        "    print(type(e).__name__, e.errno)'"
    )


def test_the_network_has_no_route_out(host, outside):
    internal = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{.Internal}}", NETWORK],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert internal == "true"
    # the web server the control node reached (the outside fixture) is out of the instance's reach
    assert "CONNECTED" not in host.check_output(connect_probe(outside, 8080))
    # control: the same probe reaches a port of the instance itself
    assert host.check_output(connect_probe("127.0.0.1", 28000)) == "CONNECTED"


def test_apt_reads_only_the_bundle(host):
    policy = host.check_output("apt-cache policy")
    assert "file:/var/lib/ml-workshop/bundle/apt/debian-bookworm-amd64" in policy
    assert "http://" not in policy and "https://" not in policy
    # a package the roles do not install is not there (and nothing is asked of a mirror)
    missing = host.run("apt-get install -s -q cowsay")
    assert missing.rc != 0 and "Unable to locate package cowsay" in missing.stderr


def test_the_bundle_verifies_and_names_what_it_holds(manifest):
    check = subprocess.run(
        ["python3", "-m", "ml_workshop.bundle", "verify", str(BUNDLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert manifest["missing"] == [], manifest["missing"]
    wheels = next(iter(manifest["contents"]["wheels"].values()))
    assert {"control", "hub", "devpi", "whistle-node", "students"} <= set(wheels)
    assert "configurable-http-proxy@5.3.0" in manifest["contents"]["npm"]["requested"]
    assert "docker.io" in manifest["contents"]["debs"]["debian-bookworm-amd64"]["requested"]
    assert any(name.startswith("Ascend-hdk-") for name in manifest["contents"]["files"]["names"])


def test_the_control_nodes_toolchain_installs_from_the_bundle_with_no_index(tmp_path):
    """scripts/bootstrap.sh --bundle: the pinned toolchain and the ml-workshop package in a new
    virtualenv from the bundle's wheels, with every index made unreachable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(MLW_VENV=str(tmp_path / "venv"), PIP_INDEX_URL="http://127.0.0.1:9/simple")
    run = subprocess.run(
        [os.path.join(os.environ["MLW_REPO"], "scripts/bootstrap.sh"), f"--bundle={BUNDLE}"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "offline: wheels from" in run.stderr
    version = subprocess.run(
        [
            str(tmp_path / "venv/bin/python"),
            "-c",
            "import ansible, ml_workshop.bundle, molecule; print(ansible.__version__)",
        ],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
    )
    assert version.stdout.strip() == "2.19.14"


def test_every_service_came_from_the_bundle(host, manifest):
    for unit in ("apt-cacher-ng", "devpi-server", "whistle", "jupyterhub"):
        assert host.service(unit).is_running, unit
    image_id = host.check_output("docker image inspect --format '{{.Id}}' ml-workshop-user:latest")
    assert image_id == manifest["contents"]["images"]["ml-workshop-user"]["id"]
    # the class's index is the bundle's wheels (a stage index, no mirror behind it)
    index = json.loads(
        host.check_output("curl -s -H 'Accept: application/json' http://127.0.0.1:3141/root/bundle")
    )
    assert index["result"]["type"] == "stage" and index["result"]["bases"] == []
    assert "pyjokes" in host.check_output("curl -s http://127.0.0.1:3141/root/bundle/+simple/")
    # the hub venv's pins and the proxy from npm's cache
    assert (
        host.check_output("/opt/jupyterhub/venv/bin/python -m pip show jupyterhub | sed -n 's/^Version: //p'")
        == "5.5.4"
    )
    assert host.file("/etc/apt/apt.conf.d/00ml-workshop-bundle").contains("ml-workshop-bundle.list")


def test_a_need_the_bundle_lacks_fails_in_preflight_naming_it(host):
    """A package the course adds after the bundle was made: the images role's preflight names it
    (and the notebook packages are still there), before anything changes."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    run = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            inventory,
            os.path.join(os.environ["MLW_REPO"], "site.yml"),
            "--tags",
            "preflight",
            "-e",
            json.dumps({"images_bundle_student_packages": [IN_BUNDLE, NOT_IN_BUNDLE]}),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out = run.stdout + run.stderr
    assert run.returncode != 0, out[-3000:]
    assert (
        "lacks what the images role" in out
        and f"wheels: {NOT_IN_BUNDLE} (set students, cp311-x86_64-glibc2.36)" in out
    ), out[-3000:]
    assert IN_BUNDLE not in out.split("lacks what the images role", 1)[1].split("Make the bundle again", 1)[0]
    assert "changed=0" in out.split("PLAY RECAP", 1)[1], out[-2000:]


def _session_form(base: str, path: str, data: dict) -> tuple[requests.Session, requests.Response]:
    s = requests.Session()
    s.get(f"{base}{path}", timeout=30)
    return s, s.post(f"{base}{path}", data={**data, "_xsrf": s.cookies.get("_xsrf", "")}, timeout=30)


@pytest.fixture(scope="module")
def student_container(host, base):
    _, signup = _session_form(
        base,
        "/hub/signup",
        {"username": STUDENT, "signup_password": PASSWORD, "signup_password_confirmation": PASSWORD},
    )
    assert signup.status_code == 200
    su = host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    admin, login = _session_form(base, "/hub/login", {"username": "superuser", "password": su})
    assert login.status_code == 200
    # /hub/authorize/<name> toggles: only when she is not approved yet (a rerun on a kept instance)
    query = f"select is_authorized from users_info where username='{STUDENT}'"
    approved = host.check_output(
        f"python3 -c {shlex.quote(f'import sqlite3; print(sqlite3.connect({DB!r}).execute({query!r}).fetchone()[0])')}"
    )
    if approved != "1":
        admin.get(f"{base}/hub/authorize/{STUDENT}", timeout=30)
    student, login = _session_form(base, "/hub/login", {"username": STUDENT, "password": PASSWORD})
    assert login.status_code == 200 and "/hub/login" not in login.url, "the approved student cannot log in"
    token = host.file("/etc/jupyterhub/secrets/api_token").content_string.strip()
    api = {"Authorization": f"token {token}"}
    started = requests.post(f"{base}/hub/api/users/{STUDENT}/server", headers=api, timeout=60)
    # (400 "already running": a rerun of the suite on a kept instance)
    assert started.status_code in (201, 202) or "already running" in started.text, started.text
    deadline = time.time() + 240
    while time.time() < deadline:
        user = requests.get(f"{base}/hub/api/users/{STUDENT}", headers=api, timeout=30).json()
        if user.get("servers", {}).get("", {}).get("ready"):
            break
        time.sleep(3)
    else:
        pytest.fail(f"{STUDENT}'s server was not ready within 240 s: {user}")
    # the student's own JupyterLab answers through the proxy with her cookie session
    lab = student.get(f"{base}/user/{STUDENT}/lab", timeout=60)
    assert lab.status_code == 200
    name = host.check_output(f"docker ps --filter label=ml-workshop.user={STUDENT} --format '{{{{.Names}}}}'")
    assert name, "no container of the student"
    return name


def in_container(host, name: str, cmd: str):
    return host.run(f"timeout 180 docker exec {name} bash -lc {shlex.quote(cmd)}")


def test_a_student_pip_installs_a_package_of_the_bundle(host, student_container):
    got = in_container(
        host,
        student_container,
        "pip uninstall -q -y pyjokes 2>/dev/null; "  # (a rerun of the suite on a kept instance)
        f"pip install --no-cache-dir {IN_BUNDLE} && python -c 'import pyjokes; print(pyjokes.get_joke())'",
    )
    assert got.rc == 0, got.stdout + got.stderr
    assert "Successfully installed pyjokes-0.8.3" in got.stdout
    assert "/root/bundle/+simple/" in in_container(host, student_container, "echo $PIP_INDEX_URL").stdout


def test_a_package_not_in_the_bundle_fails_cleanly(host, student_container, outside):
    got = in_container(host, student_container, f"pip install --no-cache-dir {NOT_IN_BUNDLE}")
    assert got.rc == 1, got.stdout + got.stderr  # pip's own failure, not the timeout's 124
    assert f"No matching distribution found for {NOT_IN_BUNDLE}" in got.stderr
    # and the student's container has no way out either
    probe = in_container(host, student_container, connect_probe(outside, 8080, python="python"))
    assert "CONNECTED" not in probe.stdout
