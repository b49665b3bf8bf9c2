"""The organisers' NPU page (/hub/npus) and the NPU gauges on /hub/metrics (issue 15, item 2).

On npu2 (exclusive, 1 NPU per student; the always-on HCIE container holds NPU 3): bob's server
(test_10) holds one NPU. The EMULATED npu-smi is given usage for bob's NPU and a Warning state for
a free one; the superuser reads them on the page in Chromium, next to who holds which NPU; a
Prometheus scrape with the metrics token reads the same numbers; a student, a student's token and
no token are refused. Then the (emulated) Ascend Docker Runtime: a container given NPU 1 through
ASCEND_VISIBLE_DEVICES sees that NPU and no other (issue 14, item 3). Leaves the emulation's card
table as it found it, bob running.
"""

from __future__ import annotations

import base64
import json
import time

import requests
from conftest import ARTIFACTS, PASSWORD, PREFIX, base_url, login, superuser_password
from prometheus_client.parser import text_string_to_metric_families
from sitehub import Hub

testinfra_hosts = [f"ansible://{PREFIX}-npu2"]

CARDS = "/etc/ascend-emulation/npus"  # the emulation's card table (`<id> <name> <health> [<aicore> <hbm>]`)
METRICS_TOKEN = "/etc/jupyterhub/secrets/metrics_token"


def write(host, path: str, text: str) -> None:
    host.check_output(f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {path}")


def bobs_npu(host) -> int:
    info = json.loads(host.check_output("docker inspect ml-workshop-user-bob"))[0]
    ids = info["Config"]["Labels"]["ml-workshop.npus"].split(",")
    assert len(ids) == 1, ids
    return int(ids[0])


def test_npu_page_and_metrics_show_holders_health_and_usage(host, browser):
    hub = Hub("npu2")
    if not (hub.server_state("bob") or {}).get("ready"):
        hub.start("bob")
    mine = bobs_npu(host)
    free = next(i for i in (0, 1, 2) if i != mine)
    original = host.file(CARDS).content_string
    cards = []
    for line in original.splitlines():
        f = line.split()
        if f and f[0].isdigit():
            if int(f[0]) == mine:
                f = f[:3] + ["37", "12000"]
            elif int(f[0]) == free:
                f = [f[0], f[1], "Warning"]
        cards.append(" ".join(f))
    write(host, CARDS, "\n".join(cards) + "\n")
    try:
        # --- the page, as the organiser sees it ----------------------------------------------
        base = base_url("npu2")
        ctx = browser.new_context()
        page = ctx.new_page()
        login(page, base, "superuser", superuser_password(host))
        page.goto(f"{base}/hub/home")
        page.click("#mlw-nav-npus")
        page.wait_for_selector("#mlw-npu-table")
        page.screenshot(path=str(ARTIFACTS / "npu2-npus.png"), full_page=True)
        assert page.inner_text("#mlw-npu-policy") == "exclusive"
        row = page.locator(f"tr.mlw-npu[data-npu='{mine}']")
        assert row.locator(".mlw-holder[data-kind=student][data-name=bob]").count() == 1
        assert "since 20" in row.locator(".mlw-holders").inner_text()
        assert row.locator(".mlw-aicore").inner_text().strip() == "37.0 %"
        assert row.locator(".mlw-hbm").inner_text().strip() == "12000 / 32768"
        assert row.locator(".mlw-health").inner_text().strip() == "OK"
        hcie = page.locator("tr.mlw-npu[data-npu='3']")
        assert hcie.locator(".mlw-holder[data-kind=service][data-name=ml-workshop-hcie]").count() == 1
        assert "not for students" in hcie.inner_text()
        warn = page.locator(f"tr.mlw-npu[data-npu='{free}']")
        assert warn.locator(".mlw-health").inner_text().strip() == "Warning"
        assert "danger" in (warn.get_attribute("class") or "")
        assert warn.locator(".mlw-free").count() == 1
        ctx.close()

        # --- a student is refused the page, and has no link to it ----------------------------
        student = browser.new_context()
        spage = student.new_page()
        login(spage, base, "bob", PASSWORD)
        spage.goto(f"{base}/hub/home")
        assert spage.locator("#mlw-nav-npus").count() == 0
        r = spage.goto(f"{base}/hub/npus")
        assert r is not None and r.status == 403
        student.close()

        # --- the same numbers for Prometheus -------------------------------------------------
        token_file = host.file(METRICS_TOKEN)
        assert token_file.mode == 0o600 and token_file.user == "root"
        token = token_file.content_string.strip()
        url = f"{base}/hub/metrics"
        wanted = {
            (
                "ml_workshop_npu_aicore_utilization_percent",
                (("chip", "0"), ("name", "910B3"), ("npu", str(mine))),
            ): 37.0,
            (
                "ml_workshop_npu_hbm_used_bytes",
                (("chip", "0"), ("name", "910B3"), ("npu", str(mine))),
            ): 12000.0 * 2**20,
            ("ml_workshop_npu_healthy", (("chip", "0"), ("name", "910B3"), ("npu", str(free)))): 0.0,
            ("ml_workshop_npu_allocated", (("holder", "bob"), ("kind", "student"), ("npu", str(mine)))): 1.0,
            (
                "ml_workshop_npu_allocated",
                (("holder", "ml-workshop-hcie"), ("kind", "service"), ("npu", "3")),
            ): 1.0,
            ("ml_workshop_user_npus", (("user", "bob"),)): 1.0,
            ("ml_workshop_npu_smi_up", ()): 1.0,
        }
        deadline = time.time() + 90  # the watch looks every hub_npu_watch_interval (15 s)
        while True:
            r = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=30)
            assert r.status_code == 200, r.text[:300]
            got = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(r.text)
                for sample in family.samples
                if sample.name.startswith("ml_workshop_")
            }
            wrong = {k: (v, got.get(k)) for k, v in wanted.items() if got.get(k) != v}
            if not wrong or time.time() > deadline:
                break
            time.sleep(5)
        (ARTIFACTS / "npu2-metrics.txt").write_text(r.text)
        assert not wrong, f"/hub/metrics (wanted, got): {wrong}"
        assert "jupyterhub_running_servers" in r.text  # JupyterHub's own metrics, same endpoint

        assert requests.get(url, timeout=30).status_code == 403
        # bob's own API token, made as the token page makes it (his login cookie and _xsrf)
        s, _ = hub.login("bob", PASSWORD)
        made = s.post(
            f"{base}/hub/api/users/bob/tokens",
            json={"note": "metrics attempt", "expires_in": 600},
            headers={"X-XSRFToken": s.cookies.get("_xsrf", ""), "Referer": f"{base}/hub/token"},
        )
        assert made.status_code in (200, 201), made.text[:300]
        r = requests.get(url, headers={"Authorization": f"token {made.json()['token']}"}, timeout=30)
        assert r.status_code == 403, "a student's token must not read the site's metrics"
    finally:
        write(host, CARDS, original)


def test_the_ascend_runtime_gives_a_container_exactly_its_npus(host):
    """The (EMULATED) Ascend Docker Runtime as the ascend_docker_runtime role registers it with
    Docker (`ascend`): what cluster mode's services rely on, as Swarm cannot pass devices. With
    ASCEND_VISIBLE_DEVICES=1 a container sees /dev/davinci1 and the management nodes and no other
    NPU, the driver files read-only, and npu-smi lists one NPU; without it, no NPU; `all` and an id
    the server lacks are refused when the container is created."""

    def run(env: str, cmd: str):
        return host.run(
            f"docker run --rm --runtime ascend --user 0 {env} --entrypoint sh ml-workshop-user:latest -c {cmd!r}"
        )

    devices = "ls /dev | grep -E '^(davinci|devmm_svm|hisi_hdc)' | sort | tr '\\n' ' '"
    r = run("-e ASCEND_VISIBLE_DEVICES=1", devices)
    assert r.rc == 0, r.stderr[-500:]
    assert r.stdout.split() == ["davinci1", "davinci_manager", "devmm_svm", "hisi_hdc"], r.stdout
    r = run(
        "-e ASCEND_VISIBLE_DEVICES=1",
        "npu-smi info -l | grep -c 'NPU ID'; grep ' /usr/local/Ascend/driver/lib64 ' /proc/mounts;"
        " touch /usr/local/Ascend/driver/lib64/x || echo not-written",
    )
    out = r.stdout.splitlines()
    assert r.rc == 0 and out[0] == "1", r.stdout + r.stderr[-300:]
    assert "ro," in out[1] and "nosuid" in out[1] and out[-1] == "not-written", r.stdout
    r = run("", devices)
    assert r.rc == 0 and "davinci" not in r.stdout, r.stdout
    r = run("-e ASCEND_VISIBLE_DEVICES=all", "true")
    assert r.rc != 0 and "invalid single device parameter: all" in r.stderr, r.stderr[-500:]
    r = run("-e ASCEND_VISIBLE_DEVICES=7", "true")  # npu2 has 4 NPUs
    assert r.rc != 0 and "/dev/davinci7" in r.stderr, r.stderr[-500:]
