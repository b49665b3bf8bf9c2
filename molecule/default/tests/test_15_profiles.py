"""Profiles on the start page of npu1 (the hub role's default hub_profiles), in a real Chromium.

In ML Workshop (the default, where test_10 started alice) the lesson notebooks the project ships
(files/workshop-content/lessons: pandas, scikit-learn regression, seaborn) execute headless, and uv
resolves through devpi in the container's and an SSH session's environment.

alice (signed up and approved by test_10) then picks each environment in turn on /hub/spawn:
- HCIE Lab: JupyterLab's launcher lists the kernels env0 (NLP/LLM) and env1 (CV), a kernel of each
  environment starts with that environment's Python, the container holds an NPU under the policy,
  and her ~/work is the one she had in ML Workshop;
- OpenClaw Showcase: her own gateway answers on her own stable host port with her own token (shown
  on ~/openclaw.md, which the profile opens, and kept in ~/work/.openclaw across restarts), and
  refuses the token of olga, who runs her own gateway on another port; no NPU is taken;
- a profile the hub does not offer is refused in words.
A start without a choice runs the last profile (JupyterHub keeps user_options); alice ends on ML
Workshop again, as the later suites expect.
"""

import json
import re
import shlex
import time

import pytest
from conftest import ARTIFACTS, PASSWORD, PREFIX, base_url, login
from sitehub import WORK, Hub

testinfra_hosts = [f"ansible://{PREFIX}-npu1"]

SERVER = "npu1"
PROBE_IMAGE = "ml-workshop-openclaw:latest"


@pytest.fixture(scope="module")
def hub():
    h = Hub(SERVER)
    h.wait_api()
    return h


def stop(hub, user):
    hub.api("DELETE", f"/users/{user}/server")
    hub.wait_stopped(user)


def start_in_browser(browser, user, slug, shot):
    """Log in, pick `slug` on the start page, press Start; the page once JupyterLab is up."""
    base = base_url(SERVER)
    ctx = browser.new_context()
    page = ctx.new_page()
    login(page, base, user, PASSWORD)
    page.goto(f"{base}/hub/spawn")
    page.check(f"#mlw-profiles input[name=profile][value={slug}]")
    page.screenshot(path=str(ARTIFACTS / f"{SERVER}-profile-{shot}-1-choice.png"), full_page=True)
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=240_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    return ctx, page


def inspect(host, user):
    info = json.loads(host.check_output(f"docker inspect ml-workshop-user-{user}"))[0]
    assert info["State"]["Running"]
    return info


def env_of(info):
    return dict(e.split("=", 1) for e in info["Config"]["Env"])


def probe(host, port, token, timeout=90):
    """`openclaw gateway probe` from the server itself (host network) against a published port:
    (accepted, the explicit target's result). Accepted: connected as an operator; refused: the
    gateway closed the connection for a token mismatch. Waits while the gateway is still starting.
    (The probe also tries ws://127.0.0.1:18789, alice's port here: only the explicit target counts.)"""
    cmd = (
        f"docker run --rm --network host --user 1000:1000 -e HOME=/tmp --entrypoint openclaw {PROBE_IMAGE} "
        f"gateway probe --json --url ws://127.0.0.1:{port} --token {shlex.quote(token)}"
    )
    deadline = time.time() + timeout
    while True:
        r = host.run(cmd)
        try:
            target = next(t for t in json.loads(r.stdout)["targets"] if t["id"] == "explicit")
        except (ValueError, KeyError, StopIteration):
            target = {"unparsed": (r.stdout + r.stderr)[-500:]}
        connect = target.get("connect") or {}
        error = connect.get("error") or ""
        if connect.get("ok") and "token mismatch" in error:
            return False, target
        if connect.get("ok") and (target.get("auth") or {}).get("role") == "operator":
            return True, target
        if time.time() > deadline:
            raise AssertionError(f"the gateway on port {port} did not answer within {timeout}s: {target}")
        time.sleep(3)


LESSONS = "/home/student/workshop/lessons"
LESSON_OUTPUT = {  # a line each notebook prints once it has run to the end
    "01-pandas-basics": "longest petals on average: virginica",
    "02-linear-regression": "all ten features: R^2",
    "03-seaborn-plots": "saved /tmp/wine-scatter.png",
}


def test_ml_workshop_runs_the_shipped_lessons(host):
    assert inspect(host, "alice")["Config"]["Labels"]["ml-workshop.profile"] == "ml-workshop"
    names = " ".join(f"{LESSONS}/{n}.ipynb" for n in LESSON_OUTPUT)
    run = host.run(
        "docker exec -u student -w /home/student ml-workshop-user-alice "
        f"jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=300 --output-dir /tmp/lessons-run {names}"
    )
    assert run.rc == 0, run.stderr[-2000:]
    for name, line in LESSON_OUTPUT.items():
        done = json.loads(
            host.check_output(f"docker exec ml-workshop-user-alice cat /tmp/lessons-run/{name}.ipynb")
        )
        outputs = [o for c in done["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
        assert not [o for o in outputs if o["output_type"] == "error"], name
        assert line in "".join("".join(o.get("text", "")) for o in outputs), f"{name}: {line!r} not printed"


def test_getting_started_page_names_her_server(host):
    """~/getstarted.md gets this server's facts at every start: her SSH command, NPUs, the cache."""
    env = env_of(inspect(host, "alice"))
    page = host.check_output("docker exec ml-workshop-user-alice cat /home/student/getstarted.md")
    assert "## Your server" in page and "<!-- mlw:your-server -->" not in page
    assert f"ssh -p {env['MLW_SSH_PORT']} root@{env['MLW_SSH_HOST']}" in page
    assert f"NPUs of this server: {env['ASCEND_VISIBLE_DEVICES']} (`npu-smi info`" in page
    assert f"pip and uv install from: {env['PIP_INDEX_URL']}." in page


def test_uv_resolves_through_devpi_in_the_container_and_in_ssh_sessions(host):
    index = env_of(inspect(host, "alice"))["UV_DEFAULT_INDEX"]
    assert index.endswith(":3141/root/pypi/+simple/")
    resolve = 'echo "index=$UV_DEFAULT_INDEX"; echo six | uv pip compile --no-cache -q -'
    exe = "docker exec -u student ml-workshop-user-alice "
    # the container's environment (JupyterLab, its terminals), then what an SSH session loads
    # (/etc/profile.d/ml-workshop-env.sh, written at start) with the variable taken away first
    for cmd in (
        exe + "bash -c " + shlex.quote(resolve),
        exe
        + "env -u UV_DEFAULT_INDEX bash -c "
        + shlex.quote(". /etc/profile.d/ml-workshop-env.sh; " + resolve),
    ):
        out = host.check_output(cmd)
        assert f"index={index}" in out and re.search(r"^six==", out, re.M), out


def test_hcie_lab_lists_its_kernels_and_runs_them(host, hub, browser):
    stop(hub, "alice")
    ctx, page = start_in_browser(browser, "alice", "hcie", "hcie")
    for kernel in ("env0 (NLP/LLM)", "env1 (CV)"):
        page.wait_for_selector(f".jp-LauncherCard[title='{kernel}'], .jp-LauncherCard:has-text('{kernel}')")
    page.screenshot(path=str(ARTIFACTS / f"{SERVER}-profile-hcie-2-launcher.png"))
    ctx.close()

    info = inspect(host, "alice")
    assert info["Config"]["Image"] == "ml-workshop-hcie:latest"
    labels = info["Config"]["Labels"]
    assert labels["ml-workshop.profile"] == "hcie"
    assert len(labels["ml-workshop.npus"].split(",")) == 1, "HCIE Lab takes NPUs under the policy (1 each)"
    specs = hub.user_server("alice", "/api/kernelspecs").json()["kernelspecs"]
    assert specs["env0"]["spec"]["display_name"] == "env0 (NLP/LLM)"
    assert specs["env1"]["spec"]["display_name"] == "env1 (CV)"
    r = hub.user_server("alice", "/api/kernels", method="POST", json={"name": "env1"})
    assert r.status_code == 201, r.text[:300]
    kid = r.json()["id"]
    try:
        deadline = time.time() + 60
        while (
            "/opt/envs/env1/bin/python"
            not in host.run("docker exec ml-workshop-user-alice ps -eo args").stdout
        ):
            assert time.time() < deadline, "no env1 kernel process"
            time.sleep(1)
    finally:
        hub.user_server("alice", f"/api/kernels/{kid}", method="DELETE")
    # the same ~/work as in ML Workshop (test_10 started her there first: her SSH state is in it)
    assert (
        host.run("docker exec ml-workshop-user-alice test -s /home/student/work/.ml-workshop/root.shadow").rc
        == 0
    )


def test_openclaw_showcase_gives_each_student_their_own_gateway(host, hub, browser):
    stop(hub, "alice")
    ctx, page = start_in_browser(browser, "alice", "openclaw", "openclaw")
    token_file = host.file(f"{WORK}/alice/.openclaw/gateway-token")
    assert token_file.mode == 0o600 and token_file.uid == 1000
    token = token_file.content_string.strip()
    assert re.fullmatch(r"[A-Za-z0-9]{40}", token)
    # the profile opens her getting-started page, which shows her address and token
    assert page.url.endswith("/lab/tree/openclaw.md"), page.url
    page.wait_for_function(f"document.body.innerText.includes({json.dumps(token)})", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / f"{SERVER}-profile-openclaw-2-getting-started.png"))

    info = inspect(host, "alice")
    port = int(info["Config"]["Labels"]["ml-workshop.port.openclaw"])
    assert 18789 <= port <= 18999
    assert info["HostConfig"]["PortBindings"]["18789/tcp"][0]["HostPort"] == str(port)
    assert not info["HostConfig"].get("Devices"), "OpenClaw Showcase takes no NPU"
    assert env_of(info)["ASCEND_VISIBLE_DEVICES"] == "" and env_of(info)["MLW_PORT_OPENCLAW"] == str(port)
    page.goto(f"{base_url(SERVER)}/hub/connection")
    shown = page.inner_text(".mlw-profile-port[data-port=openclaw]")
    assert f":{port}" in shown, shown
    ctx.close()

    # olga: her own gateway, port and token (started through the REST API with the profile)
    assert hub.api("POST", "/users/olga").status_code in (201, 409)
    hub.start("olga", options={"profile": "openclaw"})
    try:
        olga_port = int(inspect(host, "olga")["Config"]["Labels"]["ml-workshop.port.openclaw"])
        olga_token = host.file(f"{WORK}/olga/.openclaw/gateway-token").content_string.strip()
        assert olga_port != port and olga_token != token
        assert probe(host, port, token)[0], "alice's gateway refused alice's token"
        ok, result = probe(host, port, olga_token)
        assert not ok and "token mismatch" in result["connect"]["error"], "alice's gateway let olga in"
        assert probe(host, olga_port, olga_token)[0]
        assert not probe(host, olga_port, token)[0]
    finally:
        stop(hub, "olga")

    # a restart keeps her port and her token
    stop(hub, "alice")
    hub.start("alice", options={"profile": "openclaw"})
    assert int(inspect(host, "alice")["Config"]["Labels"]["ml-workshop.port.openclaw"]) == port
    assert host.file(f"{WORK}/alice/.openclaw/gateway-token").content_string.strip() == token
    assert probe(host, port, token)[0]


def test_docker_lab_runs_its_own_engine_and_only_there(host, hub):
    """hub_student_docker with a docker: true profile (molecule.yml): olga's container runs its own
    Docker engine and she runs an image she built inside it; alice's container (a profile without
    docker: true) keeps every restriction (all capabilities dropped but the few listed, no-new-privileges)."""
    hub.start("olga", options={"profile": "docker"})
    try:
        info = inspect(host, "olga")
        hc = info["HostConfig"]
        assert not hc["Privileged"] and "SYS_ADMIN" in hc["CapAdd"] and "SYS_MODULE" not in hc["CapAdd"]
        assert "seccomp=unconfined" in hc["SecurityOpt"]
        assert any(m["Destination"] == "/var/lib/docker" and m["Type"] == "volume" for m in info["Mounts"])
        assert not any("docker.sock" in m["Source"] for m in info["Mounts"]), "never the host's engine"
        build = (
            "set -e; for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done; "
            'files="/bin/echo $(ldd /bin/echo | grep -o "/[^ ]*")"; '
            "tar -ch $files 2>/dev/null | docker import - olga-mini >/dev/null; "
            "docker run --rm olga-mini /bin/echo built-and-run-by-olga"
        )
        out = host.check_output(f"docker exec -u student ml-workshop-user-olga bash -c {shlex.quote(build)}")
        assert out.strip().endswith("built-and-run-by-olga")
    finally:
        stop(hub, "olga")
    hc = inspect(host, "alice")["HostConfig"]  # OpenClaw Showcase here: no engine, every restriction kept
    assert hc["CapDrop"] == ["ALL"] and "SYS_ADMIN" not in hc["CapAdd"]
    assert "no-new-privileges:true" in hc["SecurityOpt"]


# Every test here takes `host` (testinfra's per-host parametrisation): pytest then keeps this file's
# order; a test without it would run after all the others.


def test_a_profile_not_offered_is_refused_in_words_and_forgotten(host, hub):
    """olga's last start was Docker Lab. A start asking for a profile this hub does not offer is
    refused in words listing those it does; JupyterHub had already saved the refused options as the
    ones to reuse, so the spawner puts her last good choice back: her next start without options
    is Docker Lab again, not a refusal."""
    r = hub.api("POST", "/users/olga/server", json={"profile": "root-shell"})
    assert r.status_code == 400, r.text[:300]
    assert "There is no environment root-shell on this server" in r.text
    assert "ML Workshop, HCIE Lab, OpenClaw Showcase" in r.text
    assert not hub.server_state("olga")
    hub.start("olga")
    try:
        assert inspect(host, "olga")["Config"]["Labels"]["ml-workshop.profile"] == "docker"
    finally:
        stop(hub, "olga")


def test_a_start_without_a_choice_runs_the_last_one_then_back_to_ml_workshop(host, hub):
    """JupyterHub keeps a server's last user_options: a start without options (REST API, a
    restart) runs the profile of the last start (alice's: OpenClaw Showcase). alice then goes back
    to ML Workshop, as the later suites expect."""
    stop(hub, "alice")
    hub.start("alice")
    assert inspect(host, "alice")["Config"]["Labels"]["ml-workshop.profile"] == "openclaw"
    stop(hub, "alice")
    hub.start("alice", options={"profile": "ml-workshop"})
    info = inspect(host, "alice")
    assert info["Config"]["Labels"]["ml-workshop.profile"] == "ml-workshop"
    assert info["Config"]["Image"] == "ml-workshop-user:latest"
