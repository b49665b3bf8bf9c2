"""images: the three images are current and labelled, the lean variant was built here, and the
student image runs (SSH with the generated password, sshd's limits and a wrong-password client cut
off after MaxAuthTries, the password kept across re-creation and `passwd`, key login, JupyterLab,
VS Code through jupyter-server-proxy counting as activity). The HCIE and OpenClaw images run as services in the workshop_services scenario."""

import json
import os
import pathlib
import shlex
import time

import pytest

IMAGE = "ml-workshop-user:latest"
# The hub role's pin, which the student image's jupyterhub-singleuser follows (images_jupyterhub_version).
HUB_JUPYTERHUB_VERSION = next(
    line.split(":", 1)[1].split("#", 1)[0].strip().strip('"')
    for line in (pathlib.Path(__file__).resolve().parents[5] / "roles/hub/defaults/main.yml")
    .read_text()
    .splitlines()
    if line.startswith("hub_jupyterhub_version:")
)
NAME = "mlw-test-student"
WORK = "/srv/mlw-test/work/alice"
SSH_PORT = 22022
JUP_PORT = 28888
TOKEN = "mlw-test-token"
SSH_OPTS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
    "-o ConnectTimeout=5 -o PreferredAuthentications={auth} -p %d" % SSH_PORT
)


def wait_for(host, cmd, timeout=90, interval=2):
    deadline = time.time() + timeout
    while True:
        r = host.run(cmd)
        if r.rc == 0:
            return r
        if time.time() > deadline:
            raise AssertionError(f"timed out: {cmd}\nrc={r.rc}\n{r.stdout}\n{r.stderr}")
        time.sleep(interval)


def start_student(host):
    host.run(f"docker rm -f {NAME}")
    host.check_output(
        f"docker run -d --name {NAME} -p {SSH_PORT}:22 -p {JUP_PORT}:8888 "
        f"-v {WORK}:/home/student/work -v /srv/mlw-test/workshop:/home/student/workshop:ro "
        f"-e MLW_SSH_HOST=localhost -e MLW_SSH_PORT={SSH_PORT} "
        f"-e MLW_APT_PROXY=http://cache.test:3142 -e PIP_INDEX_URL=http://cache.test:3141/root/pypi/+simple/ "
        f"{IMAGE} jupyter lab --ip=0.0.0.0 --port=8888 --no-browser "
        f"--IdentityProvider.token={TOKEN} --ServerApp.base_url=/user/alice/"
    )
    wait_for(host, f"docker logs {NAME} 2>&1 | grep -q 'sshd started'", timeout=60)
    wait_for(host, f"curl -fsS 'http://127.0.0.1:{JUP_PORT}/user/alice/api/status?token={TOKEN}'", timeout=90)


def ssh_pw(host, password, cmd):
    opts = SSH_OPTS.format(auth="password")
    return host.run(f"sshpass -p {shlex.quote(password)} ssh {opts} root@127.0.0.1 {shlex.quote(cmd)}")


@pytest.fixture(scope="module")
def student(host):
    host.check_output("mkdir -p /srv/mlw-test/workshop && echo lesson > /srv/mlw-test/workshop/lesson1.md")
    host.run(f"rm -rf {WORK}")
    host.check_output(f"mkdir -p {WORK}")
    start_student(host)
    yield host
    host.run(f"docker rm -f {NAME}")


def test_image_labels_and_versions(host):
    labels = json.loads(
        host.check_output(f"docker image inspect --format '{{{{json .Config.Labels}}}}' {IMAGE}")
    )
    assert len(labels["org.ml-workshop.input-hash"]) == 64
    out = host.check_output(f"docker run --rm --entrypoint '' {IMAGE} jupyterhub-singleuser --version")
    assert out.strip().endswith(HUB_JUPYTERHUB_VERSION)  # the hub's pin: one version for hub and image
    cfg = json.loads(host.check_output(f"docker image inspect --format '{{{{json .Config}}}}' {IMAGE}"))
    assert cfg["Entrypoint"][-1] == "/usr/local/bin/mlw-user-start"
    assert cfg["Cmd"] == ["jupyterhub-singleuser"]
    ids = host.check_output(f"docker run --rm --entrypoint '' {IMAGE} id student")
    assert "uid=1000(student) gid=1000" in ids and "1234" in ids


MANIFEST = os.environ.get("MLW_TEST_IMAGES_MANIFEST", "/var/cache/ml-workshop-test/images/manifest.json")


@pytest.mark.parametrize("name", ["ml-workshop-user", "ml-workshop-hcie", "ml-workshop-openclaw"])
def test_role_found_the_cached_images_current(host, name):
    """The harness built these once on the outer engine with the same role; the role run here
    rendered the same recipe hash and built nothing (same image id as the cached tarball)."""
    cached = json.loads(pathlib.Path(MANIFEST).read_text())[name]
    fmt = '{{.Id}} {{index .Config.Labels "org.ml-workshop.input-hash"}}'
    image_id, recipe = host.check_output(f"docker image inspect --format '{fmt}' {cached['ref']}").split()
    assert recipe == cached["hash"], f"{name}: the role renders another recipe than the harness's outer build"
    assert image_id == cached["id"], f"{name} was rebuilt in the instance"


def test_hcie_and_openclaw_are_student_images_with_their_own_parts(host):
    """Built FROM the student image (its entrypoint, JupyterLab, sshd), so the hub can offer them as
    profiles: HCIE Lab registers its environments as kernels, OpenClaw starts the student's own
    gateway from its start hook; the student image's id is in their build context."""
    student_id = host.check_output(f"docker image inspect --format '{{{{.Id}}}}' {IMAGE}").strip()
    for image, key in (("ml-workshop-hcie:latest", "hcie"), ("ml-workshop-openclaw:latest", "openclaw")):
        cfg = json.loads(host.check_output(f"docker image inspect --format '{{{{json .Config}}}}' {image}"))
        assert cfg["Entrypoint"][-1] == "/usr/local/bin/mlw-user-start" and cfg["Cmd"] == [
            "jupyterhub-singleuser"
        ]
        recorded = host.file(f"/var/lib/ml-workshop/images/build/{key}/from-image").content_string.strip()
        assert recorded == student_id, f"{image}: built from another student image"
    specs = json.loads(
        host.check_output(
            "docker run --rm --entrypoint '' ml-workshop-hcie:latest jupyter kernelspec list --json"
        )
    )["kernelspecs"]
    assert specs["env0"]["spec"]["display_name"] == "env0 (NLP/LLM)"
    assert specs["env1"]["spec"]["display_name"] == "env1 (CV)"
    assert specs["env1"]["spec"]["argv"][0] == "/opt/envs/env1/bin/python"
    out = host.check_output(
        "docker run --rm --entrypoint '' ml-workshop-openclaw:latest sh -c "
        "'test -r /etc/ml-workshop/start.d/50-openclaw.sh && openclaw --version && command -v jupyterhub-singleuser'"
    )
    assert "jupyterhub-singleuser" in out


def test_lightest_variant_was_built_here(host):
    fmt = '{{index .Config.Labels "org.ml-workshop.input-hash"}}'
    lean = host.check_output(f"docker image inspect --format '{fmt}' ml-workshop-user:lean").strip()
    full = json.loads(pathlib.Path(MANIFEST).read_text())["ml-workshop-user"]["hash"]
    assert len(lean) == 64 and lean != full
    out = host.check_output(
        "docker run --rm --entrypoint '' ml-workshop-user:lean sh -c "
        "'command -v code-server || echo none; jupyterhub-singleuser --version'"
    )
    assert out.split()[0] == "none"


def test_extra_ca_trusted_in_image(host):
    cas = host.check_output("ls /usr/local/share/ca-certificates/ml-workshop/ 2>/dev/null || true").split()
    if not cas:
        pytest.skip("no extra CA certificates on this machine")
    bundle = host.check_output(
        f"docker run --rm --entrypoint '' {IMAGE} cat /etc/ssl/certs/ca-certificates.crt"
    )
    for ca in cas:
        pem = host.file(f"/usr/local/share/ca-certificates/ml-workshop/{ca}").content_string
        body = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")][:3]
        assert "\n".join(body) in bundle, ca


def test_generated_password_ssh_login(student):
    host = student
    logs = host.check_output(f"docker logs {NAME} 2>&1")
    line = [ln for ln in logs.splitlines() if "SSH root password" in ln][0]
    password = line.split(":")[-1].strip()
    stored = host.file(f"{WORK}/.ml-workshop/root-password").content_string.strip()
    assert password == stored and len(password) >= 12
    r = ssh_pw(
        host,
        password,
        "id -un; cat /etc/apt/apt.conf.d/01ml-workshop-proxy; "
        ". /etc/profile.d/ml-workshop-env.sh; echo port=$MLW_SSH_PORT; cat /etc/pip.conf",
    )
    assert r.rc == 0, r.stderr
    assert r.stdout.splitlines()[0] == "root"
    assert 'Acquire::http::Proxy "http://cache.test:3142";' in r.stdout
    assert f"port={SSH_PORT}" in r.stdout
    assert "index-url = http://cache.test:3141/root/pypi/+simple/" in r.stdout
    assert ssh_pw(host, "wrong-password", "true").rc != 0


def test_sshd_limits(student):
    """sshd -T in the running container shows the classroom limits (images_user_ssh_* defaults)."""
    host = student
    cfg = host.check_output(f"docker exec {NAME} /usr/sbin/sshd -T")
    settings = dict(ln.split(" ", 1) for ln in cfg.splitlines() if " " in ln)
    assert settings["maxauthtries"] == "3"
    assert settings["logingracetime"] == "30"
    assert settings["maxstartups"] == "10:30:60"
    assert settings["passwordauthentication"] == "yes"


def test_wrong_passwords_cut_off_after_max_auth_tries(student):
    """A real ssh client offering wrong passwords (up to 6 prompts) is disconnected by sshd after
    MaxAuthTries (3). sshpass answers one prompt only, so the client reads its passwords from an
    SSH_ASKPASS script that counts how often it was asked."""
    host = student
    host.check_output(
        "rm -f /tmp/mlw-askpass.count && printf '#!/bin/sh\necho x >> /tmp/mlw-askpass.count\n"
        "echo wrong-password\n' > /tmp/mlw-askpass && chmod 0755 /tmp/mlw-askpass"
    )
    opts = SSH_OPTS.format(auth="password")
    r = host.run(
        "SSH_ASKPASS=/tmp/mlw-askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none "
        f"ssh {opts} -o NumberOfPasswordPrompts=6 root@127.0.0.1 true </dev/null"
    )
    assert r.rc != 0
    assert "Too many authentication failures" in r.stderr, r.stderr
    prompts = len(host.file("/tmp/mlw-askpass.count").content_string.split())
    assert prompts == 3, f"asked {prompts} times; stderr: {r.stderr}"


def test_password_survives_recreation_and_passwd(student):
    host = student
    password = host.file(f"{WORK}/.ml-workshop/root-password").content_string.strip()
    start_student(host)  # a new container on the same persistent dir
    assert "restored" in host.check_output(f"docker logs {NAME} 2>&1")
    assert ssh_pw(host, password, "true").rc == 0
    # passwd inside the container; the new password survives re-creation
    r = ssh_pw(host, password, "printf 'N3w-Secret-pw\\nN3w-Secret-pw\\n' | passwd root")
    assert r.rc == 0, r.stdout + r.stderr
    start_student(host)
    assert ssh_pw(host, "N3w-Secret-pw", "true").rc == 0
    assert ssh_pw(host, password, "true").rc != 0


def test_key_login_from_persistent_dir(student):
    host = student
    host.run("rm -f /root/mlw-test-key /root/mlw-test-key.pub")
    host.check_output("ssh-keygen -q -t ed25519 -N '' -f /root/mlw-test-key")
    host.check_output(f"cat /root/mlw-test-key.pub >> {WORK}/.ssh/authorized_keys")
    opts = SSH_OPTS.format(auth="publickey")
    r = host.run(f"ssh {opts} -i /root/mlw-test-key -o BatchMode=yes root@127.0.0.1 hostname")
    assert r.rc == 0, r.stderr


def test_password_login_can_be_switched_off(host):
    host.run("docker rm -f mlw-test-pwoff")
    host.check_output(
        f"docker run -d --name mlw-test-pwoff -p 22023:22 -e MLW_SSH_PASSWORD_AUTH=no "
        f"-v /srv/mlw-test/work/bob:/home/student/work {IMAGE} sleep 600"
    )
    try:
        wait_for(host, "docker logs mlw-test-pwoff 2>&1 | grep -q 'password login: no'", timeout=60)
        password = host.file("/srv/mlw-test/work/bob/.ml-workshop/root-password").content_string.strip()
        opts = SSH_OPTS.format(auth="password").replace(f"-p {SSH_PORT}", "-p 22023")
        r = host.run(f"sshpass -p {shlex.quote(password)} ssh {opts} root@127.0.0.1 true")
        assert r.rc != 0 and "Permission denied" in r.stderr
    finally:
        host.run("docker rm -f mlw-test-pwoff")


def test_no_ssh_activity_reporter_outside_a_hub(student):
    """Started without JUPYTERHUB_* (no hub), the container runs no mlw-ssh-activity; the script
    is in the image. Under a hub the hub role's scenario checks it reports SSH sessions."""
    host = student
    assert "mlw-ssh-activity" not in host.check_output(f"docker top {NAME} -eo pid,args")
    assert host.run(f"docker exec {NAME} test -x /usr/local/bin/mlw-ssh-activity").rc == 0


def test_jupyter_runs_as_student_with_mounts(student):
    host = student
    procs = host.check_output(f"docker top {NAME} -eo pid,uid,args")
    jupyter = [ln.split()[1] for ln in procs.splitlines() if "jupyter-lab" in ln]
    assert jupyter and set(jupyter) == {"1000"}, procs
    assert host.run(f"docker exec -u student {NAME} touch /home/student/workshop/x").rc != 0
    assert host.check_output(f"docker exec {NAME} cat /home/student/workshop/lesson1.md").strip() == "lesson"
    assert host.run(f"docker exec {NAME} test -f /home/student/getstarted.md").rc == 0


def test_vscode_through_jupyter_server_proxy_counts_as_activity(student):
    host = student
    base = f"http://127.0.0.1:{JUP_PORT}/user/alice"
    before = json.loads(host.check_output(f"curl -fsS '{base}/api/status?token={TOKEN}'"))["last_activity"]
    time.sleep(2)
    # The first request starts code-server through jupyter-server-proxy.
    r = wait_for(
        host,
        f"curl -sS -o /dev/null -w '%{{http_code}}' '{base}/vscode/?token={TOKEN}' | grep -E '^(200|302)$'",
        timeout=120,
        interval=3,
    )
    assert r.stdout.strip() in ("200", "302")
    page = host.check_output(f"curl -fsSL '{base}/vscode/?token={TOKEN}&folder=/home/student'")
    assert "code-server" in page.lower() or "vscode" in page.lower()
    after = json.loads(host.check_output(f"curl -fsS '{base}/api/status?token={TOKEN}'"))["last_activity"]
    assert after > before


# A WebSocket echo server inside the student's container (Tornado, from the notebook venv) and a
# handshake through jupyter-server-proxy (/proxy/PORT/, the handler VS Code goes through) that
# offers permessage-deflate as browsers do: the image's /etc/jupyter/jupyter_server_config.py
# makes the proxy accept it (before, VS Code's 5 MB of remote-protocol traffic went uncompressed).
ECHO_SERVER = """
import asyncio, tornado.web, tornado.websocket
class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, m):
        self.write_message(m)
async def main():
    tornado.web.Application([(r"/ws", Echo)]).listen(9977, "127.0.0.1")
    await asyncio.Event().wait()
asyncio.run(main())
"""

HANDSHAKE = """
import base64, os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 10)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET {sys.argv[2]} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\n"
           f"Connection: Upgrade\\r\\nSec-WebSocket-Key: {key}\\r\\nSec-WebSocket-Version: 13\\r\\n"
           "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\\r\\n\\r\\n").encode())
data = b""
while b"\\r\\n\\r\\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.split(b"\\r\\n\\r\\n")[0].decode())
"""


def test_websockets_through_the_proxy_are_compressed(student):
    host = student
    host.check_output(
        f"docker exec -d -u student {NAME} /opt/ml-workshop/venv/bin/python -c {shlex.quote(ECHO_SERVER)}"
    )
    wait_for(host, f"docker exec {NAME} bash -c 'exec 3<>/dev/tcp/127.0.0.1/9977'", timeout=30, interval=1)
    path = f"/user/alice/proxy/9977/ws?token={TOKEN}"
    head = host.check_output(f"python3 -c {shlex.quote(HANDSHAKE)} {JUP_PORT} {shlex.quote(path)}")
    status, _, rest = head.partition("\n")
    assert " 101 " in status, head
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in rest.splitlines())}
    assert "permessage-deflate" in headers.get("sec-websocket-extensions", ""), head
    # the setting reached Jupyter Server's own sockets too (kernels, terminals)
    conf = host.check_output(f"docker exec {NAME} cat /etc/jupyter/jupyter_server_config.py")
    assert "websocket_compression_options = {}" in conf
