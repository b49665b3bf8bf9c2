"""After the workshop (issue 15, items 3 and 5), last of the site's suites, on npu2 and the cache
host: back up, tear down with purge, destroy the server and create it again, restore onto the
new server, converge — and the class is back as it was.

The class on npu2 when this suite starts (test_80): bob and erin approved, running with an NPU
each (exclusive), their marker files and SSH passwords in ~/work; the suite stops their servers
(the class is over) and adds a pending sign-up (pendy, on npu2's roster). The teardown is checked
to leave npu2 clean (no unit, container, network, firewall chain, venv, configuration, data or
cache setting of the workshop) while the Ascend driver, Docker and the images stay and the cache
host is untouched; site.yml on the torn-down server then makes a new workshop there (new secrets
and CA, no student, no work: the purge took them). Then the instance is destroyed with its disk (the nested Docker's volume) and
created again from the platform image — a new, bare server: no driver, no images, nothing of the
workshop — and the site's prepare.yml gives it its emulated NPUs and the test images again (what
the hardware and the operator's `docker load` give a real one). restore.yml and site.yml then
have to bring back every account (pending stays pending, same password hashes), the allocations
and SSH ports, the secrets, and every file of the students' work byte for byte with its owner and
mode; a student logs in, starts on the same SSH port and logs in over SSH with the same password.
Leaves behind: npu2 a new instance, converged, bob running; nothing of the suite on the control
node but its logs and the backup (artifacts).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

import pytest
import requests
from conftest import ARTIFACTS, CA_PATH, PASSWORD, PREFIX, base_url, instance, recreate_instance
from sitehub import WORK, Hub

testinfra_hosts = [f"ansible://{PREFIX}-npu2"]

REPO = os.environ.get("MLW_REPO", ".")
NPU2, CACHE = f"{PREFIX}-npu2", f"{PREFIX}-cache"
BACKUP = ARTIFACTS / "backup"
PENDING = "pendy"
# every file of the students' work: path, owner, group, mode, checksum
WORK_LISTING = (
    f"cd {WORK} && find . -path ./.deleted -prune -o -type f -printf '%p %U %G %m\\n' | sort"
    f" && find . -path ./.deleted -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum"
)


def playbook(name: str, *args: str) -> str:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    log = ARTIFACTS / f"lifecycle-{name.replace('/', '_')}.log"
    p = subprocess.run(
        ["ansible-playbook", "-i", inventory, os.path.join(REPO, name), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    log.write_text(p.stdout + "\n" + p.stderr)
    assert p.returncode == 0, (
        f"{name} {' '.join(args)} failed (rc {p.returncode}); see {log}\n{p.stdout[-1500:]}"
    )
    return p.stdout


@pytest.fixture(scope="module")
def before(host):
    hub = Hub("npu2")
    for user in ("bob", "erin"):  # the class is over: their servers stop (their work stays)
        assert (hub.server_state(user) or {}).get("ready"), f"test_80 leaves {user} running on npu2"
        assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    for user in ("bob", "erin"):
        hub.wait_stopped(user)
    r = hub.signup(PENDING, PASSWORD)
    assert r.status_code == 200, r.text[:300]
    snap = hub.snapshot()
    assert f"{PENDING}|0|" in snap["accounts"], snap["accounts"]
    state = json.loads(host.check_output("cat /var/lib/jupyterhub/ml-workshop-state.json"))
    return {
        "snapshot": snap,
        "state": state,
        "work": host.check_output(WORK_LISTING),
        "password": host.file(f"{WORK}/bob/.ml-workshop/root-password").content_string.strip(),
        "secrets": host.check_output(
            "cd /etc/jupyterhub/secrets && sha256sum api_token cookie_secret superuser_password"
        ),
    }


def test_backup_has_every_part_and_a_manifest(host, before):
    shutil.rmtree(BACKUP, ignore_errors=True)  # a kept site run again: backup.yml refuses a finished backup
    out = playbook("backup.yml", "--limit", f"{NPU2},{CACHE}", "-e", f"backup_dest={BACKUP}")
    assert "Backup in" in out
    manifest = json.loads((BACKUP / "manifest.json").read_text())
    assert set(manifest["hosts"]) == {NPU2, CACHE}
    assert set(manifest["hosts"][NPU2]) == {
        "hub.sqlite",
        "hub-config.tar.gz",
        "hub-state.tar.gz",
        "student-work.tar.gz",
    }
    assert set(manifest["hosts"][CACHE]) == {"devpi.tar.gz"}
    assert oct(BACKUP.stat().st_mode & 0o777) == "0o700"
    check = subprocess.run(
        ["python", "-m", "ml_workshop.backup", "verify", str(BACKUP)], capture_output=True, text=True
    )
    assert check.returncode == 0 and check.stdout.strip() == "ok", check.stderr
    # the database copy is a database with the pending sign-up in it
    rows = subprocess.run(
        [
            "python",
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("
            "\"select is_authorized from users_info where username='pendy'\").fetchone())",
            str(BACKUP / NPU2 / "hub.sqlite"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert rows.stdout.strip() == "(0,)"
    # devpi answers again after its stop for the copy
    cache = instance("cache")
    assert cache.run("curl -fsS -o /dev/null http://127.0.0.1:3141/+api").rc == 0


def test_teardown_with_purge_leaves_the_server_clean(host, before):
    playbook("teardown.yml", "--limit", NPU2, "-e", "workshop_teardown_purge=true")
    for unit in ("jupyterhub", "configurable-http-proxy", "ml-workshop-student-firewall", "ml-workshop-hcie"):
        assert not host.file(f"/etc/systemd/system/{unit}.service").exists, unit
        assert host.run(f"systemctl is-active {unit}").stdout.strip() != "active", unit
    for path in (
        "/opt/jupyterhub",
        "/etc/jupyterhub",
        "/var/lib/jupyterhub",
        "/srv/ml-workshop",
        "/etc/apt/apt.conf.d/01ml-workshop-proxy",
        "/etc/ansible/facts.d/cache_client.fact",
        "/etc/ansible/facts.d/workshop_services.fact",
    ):
        assert not host.file(path).exists, f"{path} is still there"
    assert host.check_output("docker ps -aq --filter label=ml-workshop.user") == ""
    assert host.run("docker container inspect ml-workshop-hcie").rc != 0
    assert host.run("docker network inspect ml-workshop").rc != 0
    assert "MLW-STUDENTS" not in host.check_output("iptables -S")
    assert "ml-workshop cache proxy" not in host.file("/etc/environment").content_string
    assert "index-url" not in (
        host.file("/etc/pip.conf").content_string if host.file("/etc/pip.conf").exists else ""
    )
    assert host.run("id jupyterhub-proxy").rc != 0
    assert (
        host.run("curl -sk -o /dev/null --max-time 5 https://127.0.0.1:28000/hub/login").rc != 0
    )  # nothing answers
    # what the teardown never touches: the Ascend driver, Docker and its images
    assert host.file("/usr/local/Ascend/driver/version.info").exists
    assert host.service("docker").is_running
    assert host.run("docker image inspect ml-workshop-user:latest").rc == 0
    # the cache host is not in the limit: untouched
    assert instance("cache").service("devpi-server").is_running


def test_site_yml_after_the_teardown_makes_a_new_workshop(host, before):
    playbook("molecule/default/converge.yml", "--limit", f"{NPU2},{CACHE}")
    secrets = host.check_output(
        "cd /etc/jupyterhub/secrets && sha256sum api_token cookie_secret superuser_password"
    )
    assert all(line not in before["secrets"] for line in secrets.splitlines()), "a purged secret came back"
    ca = ARTIFACTS / "npu2-new-workshop-ca.crt"  # the purge took the workshop CA too: a new one
    ca.write_text(host.file(CA_PATH).content_string)
    token = host.file("/etc/jupyterhub/secrets/api_token").content_string.strip()
    r = requests.get(
        f"{base_url('npu2')}/hub/api/users",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        verify=str(ca),
    )
    assert r.status_code == 200, r.text[:300]
    names = {u["name"] for u in r.json()}
    assert "superuser" in names and not names & {"bob", "erin", PENDING}, names
    assert host.check_output(f"find {WORK} -mindepth 1 -maxdepth 1 -not -name .deleted") == ""


def test_restore_onto_a_new_server_brings_the_class_back(host, before):
    old_id = recreate_instance("npu2")["old_id"]
    new_id = subprocess.run(
        ["docker", "inspect", "-f", "{{.Id}}", NPU2], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert new_id != old_id, "npu2 was not created again"
    # a bare server: nothing of the old one (no driver, no hub, no work)
    for path in ("/usr/local/Ascend/driver/version.info", "/etc/jupyterhub", "/srv/ml-workshop"):
        assert not host.file(path).exists, f"{path} survived the new instance"
    playbook("molecule/default/prepare.yml", "--limit", NPU2)  # emulated NPUs, the test images
    playbook("restore.yml", "--limit", f"{NPU2},{CACHE}", "-e", f"restore_from={BACKUP}")
    # README "add an NPU server": --limit newhost,cache1 (the cache client settings read the cache
    # host's facts)
    playbook("molecule/default/converge.yml", "--limit", f"{NPU2},{CACHE}")
    hub = Hub("npu2")
    hub.wait_api()
    snap = hub.snapshot()
    b = before["snapshot"]
    assert snap["accounts"] == b["accounts"], "accounts, approvals or password hashes differ"
    state = json.loads(host.check_output("cat /var/lib/jupyterhub/ml-workshop-state.json"))
    assert state == before["state"], "allocations or ports differ"
    assert host.check_output(WORK_LISTING) == before["work"], "the students' work differs"
    assert (
        host.check_output(
            "cd /etc/jupyterhub/secrets && sha256sum api_token cookie_secret superuser_password"
        )
        == before["secrets"]
    ), "a secret was regenerated"
    # pending stays pending; bob logs in, starts on his SSH port, logs in over SSH with his password
    _, r = hub.login(PENDING, PASSWORD)
    assert "/hub/login" in r.url, "a pending sign-up (on npu2's roster) must not get in after a restore"
    _, r = hub.login("bob", PASSWORD)
    assert "/hub/login" not in r.url, r.url
    hub.start("bob")
    info = json.loads(host.check_output("docker inspect ml-workshop-user-bob"))[0]
    port = int(info["Config"]["Labels"]["ml-workshop.ssh-port"])
    assert port == before["state"]["ssh_ports"]["bob"]
    ssh = host.run(
        f"sshpass -p {shlex.quote(before['password'])} ssh -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password -p {port} root@127.0.0.1 "
        "cat /home/student/work/marker.txt"
    )
    assert ssh.rc == 0 and ssh.stdout.strip() == "bob-notes", ssh.stderr[-300:]
