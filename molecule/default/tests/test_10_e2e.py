"""End to end on a cache host and two NPU servers (EMULATED NPUs) converged by site.yml.

In a real headless Chromium (Debian's chromium driven by Playwright) on each server: a student
signs up, `superuser` approves at /hub/authorize, the student logs in and JupyterLab loads
(screenshots in $MLW_ARTIFACTS_DIR). Then, inside the student's container: pip goes through devpi
on the cache host, the NPUs are the ones the policy gave, and the SSH port shown works from the
server. A student assigned to npu1 is refused on npu2.
"""

import json
import os
import pathlib
import re
import shlex
import time

import pytest
import requests
from conftest import (
    ARTIFACTS,
    AUTHORIZE,
    CA_PATH,
    PASSWORD,
    PREFIX,
    approve,
    base_url,
    cache_host,
    instance,
    login,
    server_of,
    signup,
)
from sitehub import Hub

STUDENT = {"npu1": "alice", "npu2": "bob"}  # the roster in molecule.yml

testinfra_hosts = [f"ansible://{PREFIX}-npu1", f"ansible://{PREFIX}-npu2"]


def test_student_signs_up_is_approved_and_gets_jupyterlab(host, browser):
    server = server_of(host)
    base = base_url(server)
    user = STUDENT[server]
    su_pw = host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()

    ctx = browser.new_context()
    page = ctx.new_page()
    signup(page, base, user)
    page.screenshot(path=str(ARTIFACTS / f"{server}-1-signup.png"), full_page=True)
    login(page, base, user, PASSWORD)
    assert "/hub/login" in page.url, "an unapproved student must not get in"

    approve(browser, base, su_pw, user, f"{server}-2-authorize.png")

    login(page, base, user, PASSWORD)
    page.goto(f"{base}/hub/spawn")
    if server == "npu1":  # the hub's three default profiles (test_15_profiles); npu2 offers one: no choice
        page.wait_for_selector("#mlw-profiles input[name=profile]")
        offered = page.locator("#mlw-profiles input[name=profile]:not([disabled])")
        assert [offered.nth(i).get_attribute("value") for i in range(offered.count())] == [
            "ml-workshop",
            "hcie",
            "openclaw",
            "docker",  # molecule.yml: hub_profiles_extra, hub_student_docker
        ]
        assert page.is_checked("input[name=profile][value=ml-workshop]"), "ML Workshop is the default"
        page.screenshot(path=str(ARTIFACTS / f"{server}-3-profiles.png"), full_page=True)
        page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/user/{user}/lab.*"), timeout=240_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
    if server == "npu2":  # workshop_language: zh_CN there: JupyterLab's default language is Chinese
        # What the hub and the image do: the language pack is offered and JupyterLab's settings
        # default to it (overrides.json from MLW_LANGUAGE), on bob's FIRST start (an umask left at
        # 077 by the first start's password generation once made the file unreadable).
        hub = Hub(server)
        plugin = hub.user_server(user, "/lab/api/settings/@jupyterlab/translation-extension:plugin").json()
        assert plugin["schema"]["properties"]["locale"]["default"] == "zh_CN"
        assert "zh_CN" in hub.user_server(user, "/lab/api/translations/").json()["data"]
    page.screenshot(path=str(ARTIFACTS / f"{server}-3-jupyterlab.png"))
    assert "JupyterLab" in page.title()
    ctx.close()


def _container(host):
    name = f"ml-workshop-user-{STUDENT[server_of(host)]}"
    info = json.loads(host.check_output(f"docker inspect {name}"))[0]
    assert info["State"]["Running"]
    return name, info


def test_pip_in_the_student_container_goes_through_devpi(host):
    name, _ = _container(host)
    # Packages no image layer needs, so only this download can have put them into devpi.
    pkg = "pyjokes" if server_of(host) == "npu1" else "cowsay"
    host.check_output(f"docker exec {name} sh -c 'cd /tmp && pip download --no-deps -q {pkg}'")
    cache = cache_host(host)
    found = cache.check_output(f"find /var/lib/devpi/server -iname '{pkg}-*' -type f | head -n 1")
    assert found, f"{pkg} did not land in devpi's server dir on the cache host"


def test_npus_follow_the_policy(host):
    name, info = _container(host)
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    devices = sorted(d["PathOnHost"] for d in info["HostConfig"]["Devices"])
    npu_nodes = [d for d in devices if re.fullmatch(r"/dev/davinci\d+", d)]
    # group_vars/npu_servers.yml: exclusive, one NPU per running server
    assert len(npu_nodes) == 1
    assert env["ASCEND_VISIBLE_DEVICES"] == npu_nodes[0].removeprefix("/dev/davinci")
    assert "/dev/davinci_manager" in devices
    # npu1: NPUs 0-7; npu2: 0-3, of which the HCIE container holds 3 (molecule.yml host_vars)
    limit = 7 if server_of(host) == "npu1" else 2
    assert 0 <= int(env["ASCEND_VISIBLE_DEVICES"]) <= limit


def test_npu_smi_in_the_container_lists_only_her_npus(host):
    """Students check their card with `npu-smi info` first: in the container (as the student) it
    lists exactly the NPUs the container was given (the EMULATED npu-smi sees the NPUs whose
    device nodes it can reach, as the real one does), and all of them on the host."""
    name, info = _container(host)
    mine = sorted(_npu_ids_of(info))
    listed = host.check_output(f"docker exec -u 1000 {name} npu-smi info -l")
    assert re.search(r"Total Count\s+:\s+1\b", listed), listed
    assert [int(i) for i in re.findall(r"NPU ID\s+:\s+(\d+)", listed)] == mine, listed
    table = host.check_output(f"docker exec -u 1000 {name} npu-smi info")
    rows = [int(m) for m in re.findall(r"^\|\s+(\d+)\s+\S+\s+\|\s+OK", table, re.MULTILINE)]
    assert rows == mine, table
    on_host = host.check_output("npu-smi info -l")
    assert re.search(r"Total Count\s+:\s+(\d+)", on_host).group(1) == str(
        8 if server_of(host) == "npu1" else 4
    )


def _npu_ids_of(info):
    return {
        int(d["PathOnHost"].removeprefix("/dev/davinci"))
        for d in info["HostConfig"]["Devices"]
        if re.fullmatch(r"/dev/davinci\d+", d["PathOnHost"])
    }


def test_no_student_shares_an_npu_with_the_hcie_container(host):
    """One owner per NPU under exclusive: HCIE (npu2 only) keeps its NPU, students get the others."""
    fact = json.loads(host.file("/etc/ansible/facts.d/workshop_services.fact").content_string)
    if server_of(host) == "npu1":
        assert fact == {"npu_ids": [], "ports": []}
        return
    assert fact == {"npu_ids": [3], "ports": []}
    hcie = json.loads(host.check_output("docker inspect ml-workshop-hcie"))[0]
    assert hcie["State"]["Running"]
    assert _npu_ids_of(hcie) == {3}
    settings = json.loads(host.file("/etc/jupyterhub/ml-workshop.json").content_string)
    assert settings["spawner"]["npu_ids"] == [0, 1, 2]
    names = host.check_output("docker ps --filter label=ml-workshop.user --format '{{.Names}}'").split()
    assert names, "no student container runs on npu2"
    for name in names:
        info = json.loads(host.check_output(f"docker inspect {name}"))[0]
        assert _npu_ids_of(info).isdisjoint({3}), f"{name} shares the HCIE container's NPU"


def test_ssh_port_shown_to_the_student_answers(host):
    name, info = _container(host)
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    port = int(env["MLW_SSH_PORT"])
    assert port >= 22222
    banner = ""
    for _ in range(30):
        banner = host.run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; head -c 7 <&3'").stdout
        if banner.startswith("SSH-2.0"):
            break
        time.sleep(2)
    assert banner.startswith("SSH-2.0")


def test_ssh_session_has_the_notebook_environment(host):
    """An SSH command (as VS Code Remote-SSH runs its server: non-interactive, no login shell),
    with the stored root password through the published port: it starts in the work directory,
    runs the notebook Python with its packages (jupyter_server: every student image has it), has the cache settings (pip downloads through
    devpi) and sees exactly the NPUs of the container, as JupyterLab's terminal does."""
    if server_of(host) != "npu1":
        pytest.skip("checked on npu1")
    name, info = _container(host)
    env = dict(e.split("=", 1) for e in info["Config"]["Env"])
    pw = host.file(
        f"/srv/ml-workshop/student-work/{STUDENT['npu1']}/.ml-workshop/root-password"
    ).content_string.strip()
    script = (
        "pwd; command -v python3; python3 -c 'import jupyter_server as j; print(\"jupyter_server\", j.__version__)'; "
        'echo "PIP=$PIP_INDEX_URL"; ls /dev | grep -E "^davinci[0-9]+$"; npu-smi info -l | grep "NPU ID"; '
        "cd /tmp && pip download --no-deps -q -d /tmp/mlw-dl six && ls /tmp/mlw-dl"
    )
    out = host.run(
        f"sshpass -p {shlex.quote(pw)} ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o PreferredAuthentications=password -p {env['MLW_SSH_PORT']} root@127.0.0.1 {shlex.quote(script)}"
    )
    assert out.rc == 0, out.stderr[-500:]
    lines = out.stdout.splitlines()
    assert lines[0] == "/home/student/work", lines
    assert lines[1].startswith("/opt/ml-workshop/venv/"), lines
    assert lines[2].startswith("jupyter_server "), (
        lines
    )  # the notebook venv's (numpy: not in the lean test image)
    assert lines[3] == f"PIP={env['PIP_INDEX_URL']}" and env["PIP_INDEX_URL"], lines
    mine = sorted(_npu_ids_of(info))
    assert [ln for ln in lines if ln.startswith("davinci")] == [f"davinci{i}" for i in mine], lines
    assert [int(ln.split(":")[1]) for ln in lines if "NPU ID" in ln] == mine, lines
    assert any(ln.startswith("six-") for ln in lines), lines


def test_student_of_npu1_is_refused_on_npu2(host, browser):
    if server_of(host) != "npu2":
        pytest.skip("checked on npu2")
    base = base_url("npu2")
    su_pw = host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    ctx = browser.new_context()
    page = ctx.new_page()
    signup(page, base, "alice")
    ctx.close()
    ctx = browser.new_context()
    page = ctx.new_page()
    login(page, base, "superuser", su_pw)
    page.goto(f"{base}/hub/authorize")
    link = page.locator("a[href$='authorize/alice']", has_text=AUTHORIZE)
    if link.count():
        link.click()
        page.wait_for_load_state("networkidle")
    ctx.close()
    ctx = browser.new_context()
    page = ctx.new_page()
    login(page, base, "alice", PASSWORD)
    page.screenshot(path=str(ARTIFACTS / "npu2-4-alice-refused.png"), full_page=True)
    assert "/hub/login" in page.url or "/user/alice" not in page.url
    page.goto(f"{base}/hub/home")
    assert "/hub/login" in page.url, "alice (roster: npu1) must not get a session on npu2"
    ctx.close()


def test_site_used_the_cached_student_image(host):
    """The images role in site.yml rendered the harness's recipe and built nothing: the image is
    the one the harness built once on the outer engine (tests/README.md, "Images built once")."""
    manifest = os.environ.get("MLW_TEST_IMAGES_MANIFEST", "/var/cache/ml-workshop-test/images/manifest.json")
    cached = json.loads(pathlib.Path(manifest).read_text())["ml-workshop-user"]
    image_id = host.check_output(f"docker image inspect --format '{{{{.Id}}}}' {cached['ref']}").strip()
    assert image_id == cached["id"], (
        "site.yml rebuilt the student image: its recipe drifted from the harness's"
    )


def test_tls_hub_offers_its_ca_and_is_trusted_by_it(host, browser):
    """npu2 (hub_tls: selfsigned): the workshop CA is offered before login, exactly the host's;
    the fingerprint students compare is the CA's; the server certificate verifies against it for
    the names and addresses students use (from another host on the network, too)."""
    if server_of(host) != "npu2":
        pytest.skip("checked on npu2")

    base = base_url("npu2")
    on_host = host.file(CA_PATH).content_string
    r = requests.get(f"{base}/hub/workshop-ca.crt", timeout=30)  # verified against that CA alone
    assert r.status_code == 200, r.status_code
    assert r.headers["Content-Type"].startswith("application/x-x509-ca-cert"), r.headers
    assert r.text.strip() == on_host.strip()
    fingerprint = host.check_output(f"openssl x509 -noout -fingerprint -sha256 -in {CA_PATH}").split("=", 1)[
        1
    ]
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base}/hub/login")
    assert page.locator("#mlw-trust-link").count() == 1
    page.goto(f"{base}/hub/workshop-ca")
    page.screenshot(path=str(ARTIFACTS / "npu2-5-workshop-ca.png"), full_page=True)
    assert page.locator("#mlw-ca-fingerprint").inner_text().strip().upper() == fingerprint.strip().upper()
    ctx.close()
    # From another host on the classroom network, by name and by address.
    npu1 = instance("npu1")
    npu1.check_output(f"cat > /tmp/workshop-ca.crt <<'EOF'\n{on_host}\nEOF")
    ip = host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").strip()
    for name in (f"{PREFIX}-npu2", ip):
        out = npu1.run(
            f"curl -sS --cacert /tmp/workshop-ca.crt -o /dev/null -w '%{{http_code}}' https://{name}:28000/hub/health"
        )
        assert out.stdout == "200", (name, out.stdout, out.stderr)
    plain = npu1.run(f"curl -sS -o /dev/null -w '%{{http_code}}' http://{ip}:28000/hub/login")
    assert plain.rc != 0 or plain.stdout not in ("200", "302"), (plain.rc, plain.stdout)
