"""Shared by the suites of the converged site (tests/README.md: "One converged site, many suites").

The suites run in file-name order on the same three instances (a cache host, npu1 with 8 and
npu2 with 4 EMULATED NPUs) converged once by site.yml:
  test_10_e2e.py     sign-up, approval, JupyterLab in Chromium, pip through devpi, NPUs, SSH, roster
  test_15_profiles.py  the start page's environments (ML Workshop, HCIE Lab, OpenClaw, Docker Lab)
  test_16_npus.py    the organisers' NPU page and the NPU gauges on /hub/metrics
  test_20_refusals.py  a start refused or failing (no free NPU, image missing, exited at once,
                     timeout): the reason in the browser, Try again, the hub log
  test_30_tags.py    every documented tag command changes nothing; a changed variable changes
                     only its role and restarts nothing else
  test_40_attacks.py the tenant boundary: named attacks from a student's container, another
                     host on the network, a student's account and a browser, each refused
  test_80_faults.py  Docker/hub/proxy restarts and crashes, cache outage, removed and exited
                     containers, a host reboot, an interrupted site.yml run (its re-run is the
                     site's idempotence check)
  test_90_lifecycle.py  backup.yml, teardown.yml with purge, site.yml again, then npu2 destroyed
                     and created again, restore.yml and site.yml onto the new instance
Each suite either leaves the site as it found it or says in its docstring what it leaves behind
for the suites after it.
"""

import json
import os
import pathlib
import re
import subprocess

import pytest
import testinfra

PREFIX = os.environ.get("MLW_INSTANCE_PREFIX", "mlw")
PORTS = {
    "npu1": int(os.environ.get("MLW_E2E_NPU1_PORT", "28101")),
    "npu2": int(os.environ.get("MLW_E2E_NPU2_PORT", "28102")),
}
PASSWORD = "Workshop-e2e-2026!"
ARTIFACTS = pathlib.Path(os.environ.get("MLW_ARTIFACTS_DIR", "/tmp/ml-workshop-e2e-artifacts"))
# The approval link's exact text: has_text="Authorize" would also match "Unauthorize" and
# un-approve a student who is approved already.
AUTHORIZE = re.compile(r"^\s*Authorize\s*$")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def server_of(host):
    return "npu1" if host.backend.get_hostname().endswith("npu1") else "npu2"


# npu2 serves its hub over TLS with the role's self-signed workshop CA (molecule.yml host_vars:
# hub_tls: selfsigned); npu1 keeps the default, plain HTTP.
TLS = {"npu1": False, "npu2": True}
CA_PATH = "/etc/jupyterhub/tls/workshop-ca.crt"  # the workshop CA on the host (hub role, hub_tls: selfsigned)
CA_FILE = ARTIFACTS / "npu2-workshop-ca.crt"


def base_url(server):
    return f"{'https' if TLS[server] else 'http'}://127.0.0.1:{PORTS[server]}"


def instance(name):
    """A testinfra host for another instance of the site (cache, npu1, npu2)."""
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE")
    suffix = f"?ansible_inventory={inventory}" if inventory else ""
    return testinfra.get_host(f"ansible://{PREFIX}-{name}{suffix}")


def recreate_instance(name):
    """Destroy an instance and create it again, empty, as molecule's create made it: the same
    image, hostname, capabilities, security options, cgroup namespace, tmpfs mounts, labels,
    network (and aliases) and published ports; its Docker volume (the nested /var/lib/docker) is
    removed first, so nothing of the old server is left but what the image has. The site's
    prepare.yml has to run for it again (emulated NPUs, test images)."""
    container = f"{PREFIX}-{name}"
    info = json.loads(
        subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True).stdout
    )[0]
    cfg, hc = info["Config"], info["HostConfig"]
    argv = ["docker", "run", "-d", "--name", container, "--hostname", cfg["Hostname"]]
    argv += ["--cgroupns", hc["CgroupnsMode"], "--log-driver", "json-file"]
    if cfg.get("StopSignal"):
        argv += ["--stop-signal", cfg["StopSignal"]]
    for cap in hc.get("CapAdd") or []:
        argv += ["--cap-add", cap]
    for opt in hc.get("SecurityOpt") or []:
        argv += ["--security-opt", opt]
    for path, opts in (hc.get("Tmpfs") or {}).items():
        argv += ["--tmpfs", f"{path}:{opts}" if opts else path]
    for key, value in (cfg.get("Labels") or {}).items():
        argv += ["--label", f"{key}={value}"]
    for env in cfg.get("Env") or []:
        argv += ["--env", env]
    volumes = []
    for m in info["Mounts"]:
        src = m["Name"] if m["Type"] == "volume" else m["Source"]
        argv += ["--volume", f"{src}:{m['Destination']}:{'rw' if m['RW'] else 'ro'}"]
        if m["Type"] == "volume":
            volumes.append(m["Name"])
    networks = info["NetworkSettings"]["Networks"]
    assert len(networks) == 1, f"{container}: one network expected, not {list(networks)}"
    ((network, net),) = networks.items()
    argv += ["--network", network]
    for alias in net.get("Aliases") or []:
        if not info["Id"].startswith(alias):  # the old container's short id
            argv += ["--network-alias", alias]
    for port, bindings in (hc.get("PortBindings") or {}).items():
        for b in bindings or []:
            argv += ["--publish", f"{b['HostIp'] + ':' if b.get('HostIp') else ''}{b['HostPort']}:{port}"]
    argv += [cfg["Image"], *(cfg.get("Cmd") or [])]
    subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=True)
    for volume in volumes:
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True, check=True)
    subprocess.run(argv, capture_output=True, text=True, check=True)
    return {"volumes": volumes, "old_id": info["Id"]}


def cache_host(host):
    inventory = os.environ.get("MOLECULE_INVENTORY_FILE") or host.backend.ansible_inventory
    return testinfra.get_host(f"ansible://{PREFIX}-cache?ansible_inventory={inventory}")


def superuser_password(host):
    return host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()


@pytest.fixture(scope="session", autouse=True)
def workshop_ca():
    """npu2's workshop CA, trusted the way a student trusts it: by requests (REQUESTS_CA_BUNDLE,
    only this CA: the suites talk to the site alone) and by the browser (its NSS database)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    CA_FILE.write_text(instance("npu2").file(CA_PATH).content_string)
    os.environ["REQUESTS_CA_BUNDLE"] = str(CA_FILE)
    return CA_FILE


@pytest.fixture(scope="session")
def browser(workshop_ca, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    # Chromium on Linux trusts the CAs in $HOME/.pki/nssdb (certutil from libnss3-tools).
    home = tmp_path_factory.mktemp("browser-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-d",
            f"sql:{nssdb}",
            "-A",
            "-t",
            "C,,",
            "-n",
            "ml-workshop test CA",
            "-i",
            str(workshop_ca),
        ],
        check=True,
    )
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, env={**os.environ, "HOME": str(home)}
        )
        yield b
        b.close()


def login(page, base, user, password):
    page.goto(f"{base}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_load_state("networkidle")


def signup(page, base, user, password=PASSWORD):
    page.goto(f"{base}/hub/signup")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    if page.locator("#password_confirmation_input").count():
        page.fill("#password_confirmation_input", password)
    page.click("#signup_submit")
    page.wait_for_load_state("networkidle")


def approve(browser, base, su_password, user, shot=None):
    ctx = browser.new_context()
    page = ctx.new_page()
    login(page, base, "superuser", su_password)
    page.goto(f"{base}/hub/authorize")
    link = page.locator(f"a[href$='authorize/{user}']", has_text=AUTHORIZE)
    if link.count():
        link.click()
        page.wait_for_load_state("networkidle")
    page.goto(f"{base}/hub/authorize")
    if shot:
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    assert page.locator(f"a[href$='authorize/{user}']", has_text="Unauthorize").count() == 1
    ctx.close()


# --- the fault suite's report -------------------------------------------------------------------
_FAULTS: list[tuple[str, str]] = []


def record_fault(name, outcome):
    _FAULTS.append((name, outcome))


def pytest_terminal_summary(terminalreporter):
    if _ATTACKS:
        _attack_summary(terminalreporter)
    if not _FAULTS:
        return
    tr = terminalreporter
    tr.section("fault suite")
    for name, outcome in _FAULTS:
        tr.write_line(f"{'SURVIVED' if outcome.startswith('survived') else 'FAILED  '}  {name}: {outcome}")
    survived = sum(1 for _, o in _FAULTS if o.startswith("survived"))
    tr.write_line(f"{len(_FAULTS)} faults injected, {survived} survived")


# --- the attack suite's report ------------------------------------------------------------------
_ATTACKS: list[tuple[str, str, str]] = []


def record_attack(origin, name, outcome):
    _ATTACKS.append((origin, name, outcome))


def _attack_summary(tr):
    tr.section("attack suite")
    for origin, name, outcome in _ATTACKS:
        tr.write_line(
            f"{'REFUSED' if outcome.startswith('refused') else 'NOT REFUSED'}  [{origin}] {name}: {outcome}"
        )
    refused = sum(1 for *_, o in _ATTACKS if o.startswith("refused"))
    tr.write_line(f"{len(_ATTACKS)} attacks tried, {refused} refused")
