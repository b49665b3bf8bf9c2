"""What a classroom survives: faults injected into the converged site while students work.

Students: alice and carol on npu1, bob and erin on npu2 (roster in molecule.yml). Each fault is
followed by the same checks: nothing lost (accounts and approvals, every student's work and SSH
root password hash, SSH ports, NPU allocations consistent with the running containers) and the
students can go on (their servers answer through the hub, or start again). The suite prints
`N faults injected, N survived` with each fault's name and outcome.

Order matters and is part of the design: faults that keep servers running first, then the ones
that stop them, the host reboot, and last the interrupted site.yml run whose re-run must change
nothing (this re-run is the site scenario's idempotence check: see molecule.yml).
Leaves behind: every student's server running again.
"""

import functools
import os
import re
import signal
import subprocess
import time

import pytest
from conftest import PREFIX, instance, record_fault
from sitehub import Hub

STUDENTS = {"npu1": ["alice", "carol"], "npu2": ["bob", "erin"]}
PASSWORD = "Fault-suite-2026!"

testinfra_hosts = [f"ansible://{PREFIX}-npu1"]  # the suite drives both servers itself


@pytest.fixture(scope="module")
def hubs():
    return {s: Hub(s) for s in STUDENTS}


@pytest.fixture(scope="module")
def classroom(hubs):
    """Every student signed up, approved, server running, a marker file in ~/work."""
    for server, users in STUDENTS.items():
        hub = hubs[server]
        for user in users:
            if user in ("alice", "bob") and hub.server_state(user):
                continue  # test_10 signed them up with the browser and left them running
            hub.signup_and_approve(user, PASSWORD)
            hub.start(user)
        for user in users:
            hub.host.check_output(
                f"docker exec -u 1000 ml-workshop-user-{user} sh -c "
                f"'echo {user}-notes > /home/student/work/marker.txt'"
            )
    return {s: hubs[s].snapshot() for s in STUDENTS}


def nothing_lost(hub, before, must_run=True):
    """The invariant checked after every fault."""
    now = hub.snapshot()
    assert now["accounts"] == before["accounts"], "accounts or approvals changed"
    assert now["ssh_ports"] == before["ssh_ports"], "SSH ports changed"
    assert now["work"] == before["work"], "students' work or SSH passwords changed"
    # NPU allocations: every running server holds exactly what the state file says, and no NPU twice.
    held = []
    for user, npus in now["running"].items():
        ids = [int(i) for i in npus.split(",") if i]
        assert now["npus"].get(user) == ids, (
            f"{user} runs with NPUs {ids}, state says {now['npus'].get(user)}"
        )
        held += ids
    assert len(held) == len(set(held)), f"an NPU is held twice: {now['running']}"
    if must_run:
        for user in STUDENTS[hub.server]:
            assert user in now["running"], f"{user}'s server is not running"
            hub.answers(user)
    return now


def fault(name):
    """Run the fault's body; record its outcome for the summary line."""

    def wrap(fn):
        @functools.wraps(fn)  # pytest reads the fixtures from the wrapped signature
        def test(*args, **kwargs):
            t0 = time.monotonic()
            try:
                fn(*args, **kwargs)
            except BaseException as e:
                record_fault(name, f"LOST: {str(e).splitlines()[0][:200]}")
                raise
            record_fault(name, f"survived (fault and recovery checks: {time.monotonic() - t0:.0f} s)")

        return test

    return wrap


@fault("docker daemon restart (npu1): servers, kernels and terminals keep running")
def test_docker_restart(hubs, classroom):
    hub = hubs["npu1"]
    kernel = hub.user_server("alice", "/api/kernels", method="POST", json={"name": "python3"}).json()["id"]
    term = hub.user_server("alice", "/api/terminals", method="POST").json()["name"]
    ids = hub.host.check_output("docker ps -q --filter label=ml-workshop.user | sort")
    hub_pid = hub.host.check_output("systemctl show -p MainPID --value jupyterhub")
    hub.host.check_output("systemctl restart docker")
    hub.host.check_output("timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 1; done'")
    assert hub.host.check_output("docker ps -q --filter label=ml-workshop.user | sort") == ids
    assert hub.host.check_output("systemctl show -p MainPID --value jupyterhub") == hub_pid, (
        "the hub went down with Docker"
    )
    nothing_lost(hub, classroom["npu1"])
    assert kernel in [k["id"] for k in hub.user_server("alice", "/api/kernels").json()]
    # The students' network boundary came back with Docker (ml-workshop-student-firewall.service
    # is PartOf docker.service): the live rules are the wanted ones.
    check = hub.host.run(
        "/opt/jupyterhub/venv/bin/python -m ml_workshop.firewall check /etc/jupyterhub/student-firewall.json"
    )
    assert check.rc == 0, check.stdout + check.stderr
    assert term in [t["name"] for t in hub.user_server("alice", "/api/terminals").json()]


def proxy_pid(hub):
    return hub.host.check_output("systemctl show -p MainPID --value configurable-http-proxy").strip()


@fault("hub restart (npu1): servers kept, routes restored, the proxy (its own unit) untouched")
def test_hub_restart(hubs, classroom):
    hub = hubs["npu1"]
    before = proxy_pid(hub)
    hub.host.check_output("systemctl restart jupyterhub")
    hub.wait_api()
    nothing_lost(hub, classroom["npu1"])
    assert proxy_pid(hub) == before, "a hub restart restarted the proxy (students' connections cut)"


@fault("hub crash, kill -9 (npu1): servers kept, routes restored")
def test_hub_crash(hubs, classroom):
    hub = hubs["npu1"]
    pid = hub.host.check_output("systemctl show -p MainPID --value jupyterhub").strip()
    hub.host.check_output(f"kill -9 {pid}")
    deadline = time.time() + 60
    while hub.host.check_output("systemctl show -p MainPID --value jupyterhub").strip() in (pid, "0"):
        assert time.time() < deadline, "systemd did not restart the hub"
        time.sleep(1)
    hub.wait_api()
    nothing_lost(hub, classroom["npu1"])


@fault("configurable-http-proxy killed (npu1): systemd restarts its unit, the hub restores the routes")
def test_proxy_killed(hubs, classroom):
    hub = hubs["npu1"]
    hub_pid = hub.host.check_output("systemctl show -p MainPID --value jupyterhub").strip()
    before = proxy_pid(hub)
    hub.host.check_output(f"kill -9 {before}")
    deadline = time.time() + 60
    while proxy_pid(hub) in (before, "0"):
        assert time.time() < deadline, "systemd did not restart the proxy"
        time.sleep(1)
    hub.wait_api(timeout=120)
    nothing_lost(hub, classroom["npu1"])
    assert hub.host.check_output("systemctl show -p MainPID --value jupyterhub").strip() == hub_pid


@fault("cache host down during pip install: clear error, hub unaffected, works again after")
def test_cache_outage(hubs, classroom):
    hub = hubs["npu1"]
    cache = instance("cache")
    pip = (
        "docker exec ml-workshop-user-alice sh -c "
        "'cd /tmp && rm -rf dl && pip download --no-deps --retries 1 --timeout 10 -q -d dl {pkg}'"
    )
    cache.check_output("systemctl stop devpi-server")
    try:
        r = hub.host.run(pip.format(pkg="tomli-w"))
        assert r.rc != 0, "pip succeeded with the cache down"
        assert re.search(r"(?i)connection|refused|unreachable|could not find", r.stdout + r.stderr), r.stderr
        assert hub.api("GET", "/").status_code == 200, "the hub suffered from the cache outage"
    finally:
        cache.check_output("systemctl start devpi-server")
    deadline = time.time() + 90
    while hub.host.run(pip.format(pkg="tomli-w")).rc != 0:
        assert time.time() < deadline, "pip still fails after the cache came back"
        time.sleep(3)
    nothing_lost(hub, classroom["npu1"])


def _gone_then_start_again(hub, before, user, docker_action):
    hub.host.check_output(f"docker {docker_action} ml-workshop-user-{user}")
    hub.wait_stopped(user)
    nothing_lost(hub, before, must_run=False)
    hub.start(user)
    nothing_lost(hub, before)


@fault("student container removed by hand (npu2): shown stopped, next start works")
def test_container_removed(hubs, classroom):
    _gone_then_start_again(hubs["npu2"], classroom["npu2"], "erin", "rm -f")


@fault("student server exits at once (npu2): shown stopped, next start works")
def test_container_exits(hubs, classroom):
    _gone_then_start_again(hubs["npu2"], classroom["npu2"], "bob", "kill")


@fault("host reboot (npu2): servers seen stopped, NPUs freed, next start keeps work, port, password")
def test_reboot(hubs, classroom):
    hub = hubs["npu2"]
    subprocess.run(["docker", "restart", "-t", "30", f"{PREFIX}-npu2"], check=True, capture_output=True)
    hub.wait_api(timeout=240)
    for user in STUDENTS["npu2"]:
        hub.wait_stopped(user)
    now = nothing_lost(hub, classroom["npu2"], must_run=False)
    assert now["running"] == {} and now["npus"] == {}, f"NPUs still held after the reboot: {now['npus']}"
    for user in STUDENTS["npu2"]:
        hub.start(user)
    nothing_lost(hub, classroom["npu2"])


@fault(
    "site.yml --limit npu2,cache (the README's 'add an NPU server' command) killed in the middle, "
    "then run again: converges, changes nothing"
)
def test_interrupted_converge(hubs, classroom):
    repo = os.environ["MLW_REPO"]
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    limit = f"{PREFIX}-npu2,{PREFIX}-cache"
    cmd = ["ansible-playbook", "-i", inventory, f"{repo}/molecule/default/converge.yml", "--limit", limit]
    log = os.path.join(os.environ.get("MLW_ARTIFACTS_DIR", "/tmp"), "interrupted-converge.log")
    with open(log, "w") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        # Kill it while it works on the NPU servers (after the cache host's play).
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None:
            with open(log) as f:
                if re.search(r"TASK \[(ascend_driver|docker|hub) :", f.read()):
                    break
            time.sleep(1)
        assert p.poll() is None, "the converge ended before it could be interrupted"
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    rerun = subprocess.run(cmd, capture_output=True, text=True, check=False)
    with open(log, "a") as f:
        f.write("\n\n===== re-run =====\n" + rerun.stdout + rerun.stderr)
    assert rerun.returncode == 0, f"the re-run failed; see {log}"
    recap = re.findall(
        r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", rerun.stdout, re.MULTILINE
    )
    assert len(recap) == 2, rerun.stdout[-2000:]  # --limit: npu2 and the cache host only
    changed = {h: int(c) for h, c, _, _ in recap if int(c)}
    assert not changed, f"the re-run changed what was already right: {changed}; see {log}"
    for server in STUDENTS:
        nothing_lost(hubs[server], classroom[server])
