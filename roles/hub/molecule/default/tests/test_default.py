"""Hub role end to end, over HTTP against the real hub (configurable-http-proxy on 28000) and
the nested Docker engine. NPUs are EMULATED device nodes made by prepare.yml.
Tests run in file order and build on each other (sign-up -> approval -> spawn -> restart ->
an SSH session reported as activity)."""

import datetime
import hashlib
import json
import os
import pathlib
import re
import shlex
import time

import pytest

CLIENT = "/opt/jupyterhub/venv/bin/python /root/hubclient.py"
STATE = "/var/lib/jupyterhub/ml-workshop-state.json"


def hub(host, *args):
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)
    return json.loads(host.check_output(f"{CLIENT} {quoted}"))


def su_password(host):
    return host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()


def inspect(host, name):
    return json.loads(host.check_output(f"docker inspect {name}"))[0]


def state(host):
    return json.loads(host.file(STATE).content_string)


def test_service_hardened_and_running(host):
    svc = host.service("jupyterhub")
    assert svc.is_running and svc.is_enabled
    props = host.service("jupyterhub").systemd_properties
    assert props["Restart"] == "always"
    assert props["PrivateTmp"] == "yes"
    assert props["ProtectKernelTunables"] == "yes"
    assert props["ProtectKernelModules"] == "yes"
    assert props["ProtectControlGroups"] == "yes"
    assert "--upgrade-db" in props["ExecStart"]
    assert host.socket("tcp://0.0.0.0:28000").is_listening
    assert hub(host, "api", "GET", "/hub/api/")["json"]["version"] == "5.5.4"


def test_config_layered_and_secrets_0600(host):
    cfg = host.file("/etc/jupyterhub/jupyterhub_config.py")
    assert "Managed by ml-workshop" in cfg.content_string
    assert "jupyterhub_config.d" in cfg.content_string
    assert host.file("/etc/jupyterhub/jupyterhub_config.d/50-operator.py").exists
    assert host.file("/etc/jupyterhub/secrets").mode == 0o700
    for name in ["cookie_secret", "proxy_token", "api_token", "metrics_token", "superuser_password"]:
        f = host.file(f"/etc/jupyterhub/secrets/{name}")
        assert f.mode == 0o600 and f.user == "root" and len(f.content_string.strip()) >= 16
    assert host.file("/var/lib/jupyterhub").mode == 0o700
    assert host.file("/var/lib/jupyterhub/jupyterhub.sqlite").exists
    # written from hub_extra_config: carries the marker the role reconciles the directory by
    assert host.file("/etc/jupyterhub/jupyterhub_config.d/50-operator.py").content_string.startswith(
        "# ml-workshop hub_extra_config:"
    )


def test_package_installed_by_pip_into_the_venv(host):
    show = host.check_output("/opt/jupyterhub/venv/bin/python -m pip show ml-workshop")
    version = re.search(r"^Version: (\S+)", show, re.M).group(1)
    init = pathlib.Path(__file__).parents[5] / "src" / "ml_workshop" / "__init__.py"
    assert f'__version__ = "{version}"' in init.read_text()
    assert not host.file("/opt/jupyterhub/lib").exists  # the old copy-the-files layout is gone
    unit = host.file("/etc/systemd/system/jupyterhub.service").content_string
    assert "PYTHONPATH" not in unit


def test_branded_pages_and_operator_override(host):
    login = hub(host, "page", "nobody", "x", "/hub/login")
    assert "mlw-banner" in login["text"]
    signup = hub(host, "page", "nobody", "x", "/hub/signup")
    assert "mlw-banner" in signup["text"] and "signup_password" in signup["text"]
    missing = hub(host, "page", "nobody", "x", "/hub/no-such-page")
    assert missing["status"] == 404 and "MLW-OPERATOR-404" in missing["text"]


def test_signup_refuses_reserved_names(host):
    # NativeAuthenticator alone would approve a sign-up under an admin's name at once
    for name in ["superuser", "admin", "root", "Admin"]:
        out = hub(host, "signup", name, "take-over-1234")
        assert "is reserved" in out["text"], (name, out["status"])
    assert not hub(host, "login", "admin", "take-over-1234")["ok"]
    assert hub(host, "login", "superuser", su_password(host))["ok"]
    rows = host.check_output(
        "sqlite3 /var/lib/jupyterhub/jupyterhub.sqlite 'select username from users_info'"
    )
    assert not {"admin", "root"} & set(rows.split())


def test_signup_refuses_names_off_the_pattern(host):
    page = hub(host, "page", "nobody", "x", "/hub/signup")
    assert 'id="mlw-username-rule"' in page["text"] and "a lowercase letter first" in page["text"]
    for name in ["{prefix}", "x{prefix.foo}", "bob.smith", "9lives"]:
        out = hub(host, "signup", name, "good-pass-1234")
        assert "cannot be used" in out["text"], (name, out["status"])
    rows = host.check_output(
        "sqlite3 /var/lib/jupyterhub/jupyterhub.sqlite 'select username from users_info'"
    )
    assert "prefix" not in rows and "bob.smith" not in rows


def test_superuser_logs_in_and_wrong_password_fails(host):
    assert hub(host, "login", "superuser", su_password(host))["ok"]
    assert not hub(host, "login", "superuser", "wrong-password")["ok"]


def test_signup_needs_approval(host):
    out = hub(host, "signup", "alice", "alice-pass-9876")
    assert "Your information has been sent to the admin" in out["text"]
    assert not hub(host, "login", "alice", "alice-pass-9876")["ok"]
    approve = hub(host, "approve", "superuser", su_password(host), "alice")
    assert approve["admin_login"] and approve["authorize_page"] == 200
    assert hub(host, "login", "alice", "alice-pass-9876")["ok"]


def test_class_list_users_are_preapproved(host):
    assert hub(host, "login", "carol", "carol-pass-1234")["ok"]
    assert hub(host, "login", "dave", "dave-pass-5678")["ok"]


def test_idle_culler_runs_as_scoped_service(host):
    code = (
        "import json, sqlite3\n"
        "c = sqlite3.connect('/var/lib/jupyterhub/jupyterhub.sqlite')\n"
        "print(json.dumps(c.execute('select r.name, r.scopes from roles r join service_role_map m on m.role_id = r.id '\n"
        "    'join services s on s.id = m.service_id where s.name = ?', ('idle-culler',)).fetchall()))\n"
    )
    rows = json.loads(host.check_output("python3 -c %s", code))
    assert len(rows) == 1 and rows[0][0] == "idle-culler"
    assert set(json.loads(rows[0][1])) == {
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    }
    assert host.run("pgrep -f jupyterhub_idle_culler").rc == 0


def start_server(host, user, timeout=60):
    """Start USER's server through the REST API (the service token) and wait until it is ready."""
    out = hub(host, "api", "POST", f"/hub/api/users/{user}/server")
    assert out["status"] in (201, 202), out
    for _ in range(timeout):
        if hub(host, "api", "GET", f"/hub/api/users/{user}")["json"]["servers"].get("", {}).get("ready"):
            return
        time.sleep(1)


def test_spawn_alice_through_the_api(host):
    start_server(host, "alice")
    status = hub(host, "api", "GET", "/user/alice/api/status")
    assert status["status"] == 200 and "started" in status["json"]


def test_alice_container(host):
    c = inspect(host, "ml-workshop-user-alice")
    hc = c["HostConfig"]
    assert c["State"]["Running"]
    mounts = {m["Destination"]: m for m in c["Mounts"]}
    assert mounts["/home/student/work"]["Source"] == "/srv/ml-workshop/student-work/alice"
    assert mounts["/home/student/work"]["RW"] is True
    assert mounts["/home/student/workshop"]["RW"] is False
    assert mounts["/usr/local/dcmi"]["RW"] is False
    assert not any("docker.sock" in m["Source"] for m in c["Mounts"])
    assert hc["Privileged"] is False
    assert hc["CapDrop"] == ["ALL"] and "DAC_OVERRIDE" in hc["CapAdd"] and "SYS_ADMIN" not in hc["CapAdd"]
    assert hc["Memory"] == 1024**3
    assert hc["CpuQuota"] == 100000 and hc["CpuPeriod"] == 100000
    assert hc["PidsLimit"] == 512
    assert hc["ShmSize"] == 256 * 1024**2
    devices = sorted(d["PathOnHost"] for d in hc["Devices"])
    assert devices == [
        "/dev/davinci0",
        "/dev/davinci1",
        "/dev/davinci_manager",
        "/dev/devmm_svm",
        "/dev/hisi_hdc",
    ]
    assert hc["PortBindings"]["22/tcp"][0]["HostPort"] == "22222"
    env = dict(e.split("=", 1) for e in c["Config"]["Env"])
    assert env["ASCEND_VISIBLE_DEVICES"] == "0,1"
    assert env["MLW_SSH_PORT"] == "22222" and env["MLW_SSH_HOST"] == "npu1.workshop.test"
    assert env["PIP_INDEX_URL"] == "http://cache.workshop.test:3141/root/pypi/+simple/"
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/tree"  # from jupyterhub_config.d/50-operator.py
    assert c["Config"]["Labels"]["ml-workshop.npus"] == "0,1"
    # one init: the image's tini is PID 1, so Docker's init is not added in front of it
    assert c["Config"]["Entrypoint"][0] == "/usr/bin/tini"
    assert not hc.get("Init")


CONTENT = "/srv/ml-workshop/workshop-content"
IRIS_SHA256 = "a8b5bfa0d79ec439086b5c7570966a2e2cdbcdf27d3782bd2f69c1ecc1e1184f"


def test_workshop_content_synced_and_downloaded(host):
    """lessons/, datasets/, models/ exist; the control node's tree (lessons and 200 generated
    files of 1 MiB) arrived whole, owned by the student image's uid (instructors edit it; students
    mount it read-only) and world-readable; the listed download is there and has its sha256
    (molecule's idempotence step then proves the second sync copies nothing)."""
    src = pathlib.Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "workshop-content"
    for d in ("", "/lessons", "/datasets", "/models"):
        f = host.file(CONTENT + d)
        assert f.is_directory and (f.uid, f.gid) == (1000, 1000) and f.mode == 0o755, d
    local = sorted(p.name for p in (src / "datasets/generated").iterdir())
    assert len(local) == 200
    listing = host.check_output(f"cd {CONTENT}/datasets/generated && stat -c '%n %s %a %u' *").splitlines()
    assert [ln.split()[0] for ln in listing] == local
    assert {tuple(ln.split()[1:]) for ln in listing} == {("1048576", "644", "1000")}
    for name in (local[0], local[99], local[-1]):
        want = hashlib.sha256((src / "datasets/generated" / name).read_bytes()).hexdigest()
        assert host.check_output(f"sha256sum {CONTENT}/datasets/generated/{name}").split()[0] == want
    iris = host.file(f"{CONTENT}/datasets/iris/iris.csv")
    assert iris.uid == 1000 and iris.mode == 0o644
    assert host.check_output(f"sha256sum {CONTENT}/datasets/iris/iris.csv").split()[0] == IRIS_SHA256


def test_inside_alice_container(host):
    run = "docker exec ml-workshop-user-alice "
    assert host.check_output(run + "ls /dev/davinci0 /dev/davinci1").split() == [
        "/dev/davinci0",
        "/dev/davinci1",
    ]
    assert host.run(run + "ls /dev/davinci2").rc != 0
    assert "Lesson 1" in host.check_output(run + "cat /home/student/workshop/lessons/01-intro.md")
    assert host.run(run + "touch /home/student/workshop/x").rc != 0
    host.check_output(
        run + "setpriv --reuid=1000 --regid=1000 --clear-groups touch /home/student/work/notes.txt"
    )
    assert host.file("/srv/ml-workshop/student-work/alice/notes.txt").uid == 1000
    assert host.file("/srv/ml-workshop/student-work/alice").uid == 1000
    # PID 1 is tini itself (not docker-init with tini below it): tini reaps and never warns
    assert host.check_output(run + "cat /proc/1/comm") == "tini"
    logs = host.run("docker logs ml-workshop-user-alice")
    assert "not running as PID 1" not in logs.stdout + logs.stderr


def test_ssh_published(host):
    banner = host.check_output(
        "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', 22222), 5); print(s.recv(64).decode())\""
    )
    assert banner.startswith("SSH-2.0-OpenSSH")


def test_connection_page(host):
    page = hub(host, "page", "alice", "alice-pass-9876", "/hub/connection")
    assert page["status"] == 200
    assert 'id="mlw-ssh-port">22222<' in page["text"]
    assert "ssh -p 22222 root@npu1.workshop.test" in page["text"]
    assert "Host ml-workshop-alice" in page["text"] and "Port 22222" in page["text"]


def _spawn(host, user):
    out = hub(host, "api", "POST", f"/hub/api/users/{user}/server")
    for _ in range(60):
        u = hub(host, "api", "GET", f"/hub/api/users/{user}")["json"]
        if u["servers"].get("", {}).get("ready"):
            break
        time.sleep(1)
    return out


def test_exclusive_second_user_gets_other_npus(host):
    assert _spawn(host, "carol")["status"] in (201, 202)
    c = inspect(host, "ml-workshop-user-carol")
    env = dict(e.split("=", 1) for e in c["Config"]["Env"])
    assert env["ASCEND_VISIBLE_DEVICES"] == "2,3"
    assert c["HostConfig"]["PortBindings"]["22/tcp"][0]["HostPort"] == "22223"
    assert state(host)["npus"] == {"alice": [0, 1], "carol": [2, 3]}


def test_exclusive_none_free_is_refused(host):
    out = hub(host, "api", "POST", "/hub/api/users/dave/server")
    assert out["status"] == 409
    assert "No free NPU" in out["json"]["message"]
    assert host.run("docker inspect ml-workshop-user-dave").rc != 0


def test_stop_releases_npus(host):
    out = hub(host, "api", "DELETE", "/hub/api/users/carol/server")
    assert out["status"] in (202, 204)
    for _ in range(60):
        if host.run("docker inspect ml-workshop-user-carol").rc != 0:
            break
        time.sleep(1)
    assert "carol" not in state(host)["npus"]
    assert _spawn(host, "dave")["status"] in (201, 202)
    env = dict(e.split("=", 1) for e in inspect(host, "ml-workshop-user-dave")["Config"]["Env"])
    assert env["ASCEND_VISIBLE_DEVICES"] == "2,3"
    # carol's SSH port stays hers; dave gets the next one
    assert state(host)["ssh_ports"] == {"alice": 22222, "carol": 22223, "dave": 22224}


def test_hub_restart_keeps_servers_allocations_and_ports(host):
    before = {u: inspect(host, f"ml-workshop-user-{u}")["Id"] for u in ("alice", "dave")}
    st_before = state(host)
    host.check_output("systemctl restart jupyterhub")
    for _ in range(60):
        r = host.run(f"{CLIENT} api GET /hub/api/")
        if r.rc == 0 and json.loads(r.stdout)["status"] == 200:
            break
        time.sleep(1)
    for u, cid in before.items():
        c = inspect(host, f"ml-workshop-user-{u}")
        assert c["Id"] == cid and c["State"]["Running"]
        assert hub(host, "api", "GET", f"/hub/api/users/{u}")["json"]["servers"][""]["ready"]
    for _ in range(30):
        if hub(host, "api", "GET", "/user/alice/api/status")["status"] == 200:
            break
        time.sleep(1)
    assert hub(host, "api", "GET", "/user/alice/api/status")["status"] == 200
    assert hub(host, "api", "GET", "/user/dave/api/status")["status"] == 200
    assert state(host) == st_before
    # after the restart the allocation is still enforced
    out = hub(host, "api", "POST", "/hub/api/users/carol/server")
    assert out["status"] == 409


def _when(stamp):
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _last_activity(host, user):
    u = hub(host, "api", "GET", f"/hub/api/users/{user}")["json"]
    return _when(u["last_activity"]), _when(u["servers"][""]["last_activity"])


def test_ssh_session_counts_as_activity(host):
    """dave works only over SSH (no browser, no proxied request to his server): with no session
    his last_activity stays put for a reporting interval; while a session is open, his container's
    mlw-ssh-activity reports it (every 10 s here: MLW_SSH_ACTIVITY_INTERVAL through
    hub_container_env) and the hub's last_activity of dave and of his server moves past t0."""
    env = dict(e.split("=", 1) for e in inspect(host, "ml-workshop-user-dave")["Config"]["Env"])
    assert env["MLW_SSH_ACTIVITY_INTERVAL"] == "10"
    password = host.file(
        "/srv/ml-workshop/student-work/dave/.ml-workshop/root-password"
    ).content_string.strip()
    # Control: without a session, one reporting interval passes and nothing moves.
    t_quiet = float(host.check_output("date +%s.%N"))
    time.sleep(12)
    t0 = float(host.check_output("date +%s.%N"))
    before = _last_activity(host, "dave")
    assert max(before) < t_quiet, f"last_activity {before} moved without an SSH session (since {t_quiet})"
    ssh = (
        f"sshpass -p {shlex.quote(password)} ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PreferredAuthentications=password -p 22224 root@127.0.0.1 'sleep 60'"
    )
    host.check_output(
        "rm -f /tmp/mlw-ssh-dave.pid; setsid -f sh -c "
        + shlex.quote(f"echo $$ > /tmp/mlw-ssh-dave.pid; exec {ssh}")
        + " </dev/null >/tmp/mlw-ssh-dave.log 2>&1"
    )
    try:
        deadline = time.time() + 45
        while True:
            now = _last_activity(host, "dave")
            if min(now) >= t0:
                break
            assert time.time() < deadline, (
                f"last_activity {now} not past {t0}; ssh: {host.run('cat /tmp/mlw-ssh-dave.log').stdout}; "
                f"processes: {host.run('docker top ml-workshop-user-dave -eo pid,user,args').stdout}; "
                f"log: {host.run('docker logs --tail 30 ml-workshop-user-dave 2>&1').stdout}"
            )
            time.sleep(3)
    finally:
        host.run("test -s /tmp/mlw-ssh-dave.pid && kill $(cat /tmp/mlw-ssh-dave.pid)")
    logs = host.check_output("docker logs ml-workshop-user-dave 2>&1")
    assert "[mlw-ssh-activity] 1 SSH session(s) open: reporting activity" in logs, logs[-2000:]
    assert "activity report failed" not in logs
    assert env["JUPYTERHUB_API_TOKEN"] not in logs


def test_failed_logins_lock_the_account(host):
    for _ in range(5):  # hub_allowed_failed_logins
        assert not hub(host, "login", "carol", "not-her-password")["ok"]
    assert not hub(host, "login", "carol", "carol-pass-1234")["ok"]  # locked for 300 s
    assert hub(host, "login", "dave", "dave-pass-5678")["ok"]  # others are not affected


@pytest.mark.parametrize("user", ["alice", "dave"])
def test_cleanup(host, user):
    hub(host, "api", "DELETE", f"/hub/api/users/{user}/server")


def test_deleting_a_user_archives_work_and_frees_the_port(host):
    # carol: started once (work dir, SSH port 22223), stopped since; test_proxy.py still needs alice
    assert host.file("/srv/ml-workshop/student-work/carol").is_directory
    host.check_output("touch /srv/ml-workshop/student-work/carol/notes.txt")
    assert state(host)["ssh_ports"]["carol"] == 22223
    out = hub(host, "api", "DELETE", "/hub/api/users/carol")
    assert out["status"] == 204, out
    assert not host.file("/srv/ml-workshop/student-work/carol").exists
    archived = host.check_output("ls /srv/ml-workshop/student-work/.deleted").split()
    assert len(archived) == 1 and re.fullmatch(r"carol-\d{8}T\d{6}Z", archived[0]), archived
    assert host.file(f"/srv/ml-workshop/student-work/.deleted/{archived[0]}/notes.txt").exists
    assert host.file("/srv/ml-workshop/student-work/.deleted").mode == 0o700
    st = state(host)
    assert "carol" not in st["ssh_ports"] and "carol" not in st["npus"]
    # the name is free again: a new carol signs up and waits for approval like anyone
    out = hub(host, "signup", "carol", "new-carol-pass-1")
    assert "Your information has been sent to the admin" in out["text"]


def test_students_download_their_own_work(host):
    """/hub/my-work.tar.gz (linked from the connection page): the logged-in student's own work
    directory and nothing else; no login, no archive. (Before the slower tests below: the login
    rate limit's bucket refills before the flood test, which needs it full.)"""
    page = hub(host, "page", "alice", "alice-pass-9876", "/hub/connection")
    assert page["status"] == 200 and "my-work.tar.gz" in page["text"]
    for user, password in (("alice", "alice-pass-9876"), ("dave", "dave-pass-5678")):
        out = hub(host, "download", user, password, "/hub/my-work.tar.gz", f"/tmp/{user}-work.tar.gz")
        assert out["login"] and out["status"] == 200, out
        assert out["content_type"] == "application/gzip" and f'"{user}-work.tar.gz"' in out["disposition"]
        names = host.check_output(f"tar tzf /tmp/{user}-work.tar.gz").split()
        assert names and all(n == f"{user}/" or n.startswith(f"{user}/") for n in names), names
    assert "alice/notes.txt" in host.check_output("tar tzf /tmp/alice-work.tar.gz").split()
    anonymous = host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:28000/hub/my-work.tar.gz")
    assert anonymous.stdout.strip() in ("302", "403"), anonymous.stdout


def test_instructor_container(host):
    """The hub's admin (an instructor) gets the workshop content read-write and every student's
    work read-only at ~/students (hub_instructor_*); students keep content read-only and only
    their own work (test_alice_container, test_inside_alice_container)."""
    start_server(host, "superuser")
    try:
        c = inspect(host, "ml-workshop-user-superuser")
        mounts = {m["Destination"]: m for m in c["Mounts"]}
        assert mounts["/home/student/workshop"]["RW"] is True
        assert mounts["/home/student/students"]["Source"] == "/srv/ml-workshop/student-work"
        assert mounts["/home/student/students"]["RW"] is False
        assert mounts["/home/student/work"]["Source"] == "/srv/ml-workshop/student-work/superuser"
        as_student = (
            "docker exec ml-workshop-user-superuser setpriv --reuid=1000 --regid=1000 --clear-groups "
        )
        host.check_output(
            as_student + "sh -c 'echo edited > /home/student/workshop/lessons/02-by-instructor.md'"
        )
        assert host.file(f"{CONTENT}/lessons/02-by-instructor.md").content_string == "edited\n"
        assert host.check_output(as_student + "ls /home/student/students/alice") != ""
        assert host.run(as_student + "touch /home/student/students/alice/from-instructor").rc != 0
        # the deleted users' archive stays out of reach (0700 root)
        assert host.run(as_student + "ls /home/student/students/.deleted").rc != 0
    finally:
        hub(host, "api", "DELETE", "/hub/api/users/superuser/server")
        host.run(f"rm -f {CONTENT}/lessons/02-by-instructor.md")


def test_collect_work_archives_each_student(host, tmp_path):
    """collect-work.yml (the repository's playbook, run as an organiser runs it): one archive per
    student with their files, a summary table, nothing of the deleted users' archive; a link in a
    student's work to the hub's secrets is stored as a link, never as the secret."""
    import subprocess
    import tarfile

    host.check_output("ln -sfn /etc/jupyterhub/secrets/api_token /srv/ml-workshop/student-work/alice/steal")
    listing = host.check_output("ls /srv/ml-workshop/student-work").split()
    dest = tmp_path / "collected"
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    repo = pathlib.Path(os.environ.get("MLW_REPO", pathlib.Path(__file__).resolve().parents[5]))
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_CALLBACKS_ENABLED"}
    try:
        p = subprocess.run(
            [
                "ansible-playbook",
                "-i",
                inventory,
                str(repo / "collect-work.yml"),
                "-e",
                f"collect_work_hosts={host.backend.host}",
                "-e",
                f"collect_work_dest={dest}",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    finally:
        host.run("rm -f /srv/ml-workshop/student-work/alice/steal")
    got = dest / host.backend.host
    archives = sorted(f.name for f in got.glob("*.tar.gz"))
    assert archives == sorted(f"{n}.tar.gz" for n in listing), (archives, listing)
    with tarfile.open(got / "alice.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "alice/notes.txt" in members
    assert members["alice/steal"].issym() and members["alice/steal"].linkname.endswith("api_token")
    secret = host.file("/etc/jupyterhub/secrets/api_token").content_string.strip().encode()
    for f in got.glob("*.tar.gz"):
        with tarfile.open(f) as tar:
            for m in tar.getmembers():
                if m.isfile():
                    assert secret not in tar.extractfile(m).read(), (f.name, m.name)
    summary = (got / "summary.md").read_text()
    assert summary.startswith(f"# Students' work collected from {host.backend.host}")
    assert "| alice |" in summary and ".deleted" not in summary
    assert f"| **{len(listing)} students** |" in summary


def test_login_rate_limit_per_address(host):
    # From the instance's own address, not 127.0.0.1: the other checks keep their budget.
    ip = host.check_output("hostname -I").split()[0]
    client = f"HUB_URL=http://{ip}:28000 {CLIENT}"
    flood = json.loads(host.check_output(f"{client} flood nobody guess-1234 200"))
    statuses = flood["statuses"]
    # Refused once the burst is spent (hub_auth_rate_burst: 40 here), not before: the tries
    # before the refusal are the burst plus what the bucket refilled meanwhile (30 a minute).
    assert statuses[-1] == 429, flood
    assert 40 <= len(statuses) - 1 <= 40 + flood["seconds"] / 2 + 1, flood
    assert set(statuses[:-1]) == {200}, flood
    # The refusal is logged with the client's address — the bucket's key, never the proxy's own
    # address (that would put every student behind the proxy in one bucket). journald may lag.
    logged = []
    for _ in range(20):
        out = host.run(
            "journalctl -u jupyterhub -o cat | grep -o 'Too many login/sign-up attempts from [^;]*'"
        )
        logged = sorted({line.rsplit(" ", 1)[-1] for line in out.stdout.split("\n") if line})
        if logged:
            break
        time.sleep(0.5)
    # One key: the flooding client's, an address of this instance (where the client runs; the
    # kernel here may use the primary address as the source whichever local address is dialled).
    own = set(host.check_output("hostname -I").split())
    assert len(logged) == 1 and logged[0] in own, (logged, own)
    # Other clients are not limited: 127.0.0.1 through the proxy, and a fresh address sent straight
    # to the hub from this host (a local peer may name the client in X-Forwarded-For, as
    # configurable-http-proxy does). Before the hub trusted all its own addresses as the proxy's,
    # the proxy's connection (from the primary address) was the key of EVERY proxied login: the
    # flood above locked out 127.0.0.1 too — one bucket for the whole class.
    out = hub(host, "login", "superuser", su_password(host))
    assert out["ok"], out
    other = f"HUB_URL=http://172.31.240.1:8081 HUB_FORWARDED_FOR=198.51.100.7 {CLIENT}"
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in ["login", "superuser", su_password(host)])
    out = json.loads(host.check_output(f"{other} {quoted}"))
    assert out["ok"], out
