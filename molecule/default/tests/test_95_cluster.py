"""Cluster mode (issue 14), last of the site's suites, on the site's own three instances: the
cache host becomes the one hub (and the Swarm manager), npu1 (8 EMULATED NPUs) and npu2 (4) its
NPU nodes.

The operator's path: stop the per-server class, set `workshop_hub_mode: cluster` (here `-e`, with
no roster: the class signs up on the one URL; the HCIE container keeps no NPU of npu2, so the
class has all 8 + 4) and run site.yml. Then, through a real Chromium and
the REST API on the one URL: students sign up and are approved on the one admin page; as many
students as there are students' NPUs, plus one, start under `exclusive` with 1 NPU each — all but
the last run, spread over both nodes, each container seeing exactly its own NPU device node (the
EMULATED Ascend Docker Runtime, the nodes' default runtime, made them from ASCEND_VISIBLE_DEVICES);
the last is refused with the words saying no server of the cluster has a free NPU. A student's
second start lands on the same node with the same files in ~/work; SSH answers on the node's
port; after draining a node new starts go to the other one (and a student whose work is there is
refused naming it); a hub restart keeps every running server.
Leaves behind: the site in cluster mode (the scenario's destroy follows).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from conftest import ARTIFACTS, PASSWORD, PREFIX, approve, instance, login, signup
from sitehub import DB, Hub

testinfra_hosts = [f"ansible://{PREFIX}-cache"]

REPO = os.environ.get("MLW_REPO", ".")
NODES = ("npu1", "npu2")
STUDENT_NPUS = {"npu1": 8, "npu2": 4}  # prepare.yml's emulation (the HCIE container gets none here)
# (MLW_CLUSTER_NAMES: another prefix, to run the suite again on a dev site)
STUDENTS = [
    f"{os.environ.get('MLW_CLUSTER_NAMES', 'c')}{i:02d}" for i in range(sum(STUDENT_NPUS.values()) + 1)
]
LAST = STUDENTS[-1]


def address_of(name: str) -> str:
    return subprocess.run(
        [
            "docker",
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            f"{PREFIX}-{name}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


class ClusterHub(Hub):
    """The one hub on the cache host, reached at its address on the instances' network."""

    def __init__(self):
        self.server = "cache"
        self.host = instance("cache")
        self.base = f"http://{address_of('cache')}:28000"

    def sql(self, query: str) -> str:
        """A query of the hub's database (the cache host has no sqlite3 program: Python's module)."""
        script = f"import sqlite3; print('\\n'.join('|'.join(map(str, r)) for r in sqlite3.connect({DB!r}).execute({query!r})))"
        return self.host.check_output(f"python3 -c {shlex.quote(script)}")

    def signup_and_approve(self, user, password):
        self.signup(user, password)
        su = self.host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
        admin, _ = self.login("superuser", su)
        if self.sql(f"select is_authorized from users_info where username='{user}'").strip() != "1":
            admin.get(f"{self.base}/hub/authorize/{user}")


def playbook(*args: str) -> str:
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    log = ARTIFACTS / "cluster-site.log"
    p = subprocess.run(
        ["ansible-playbook", "-i", inventory, os.path.join(REPO, "molecule/default/converge.yml"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    log.write_text(p.stdout + "\n" + p.stderr)
    assert p.returncode == 0, (
        f"site.yml {' '.join(args)} failed (rc {p.returncode}); see {log}\n{p.stdout[-2500:]}"
    )
    return p.stdout


def on_node(node: str, cmd: str) -> str:
    return instance(node).check_output(cmd)


def tasks_by_user(hub_host) -> dict[str, str]:
    """{user: node} of the students' running Swarm tasks, as the manager lists them."""
    out = hub_host.check_output(
        "docker service ls -q --filter label=ml-workshop.user | xargs -r docker service ps "
        "--filter desired-state=running --format '{{.Name}} {{.Node}} {{.CurrentState}}'"
    )
    got = {}
    for line in out.splitlines():
        name, node, state = line.split(" ", 2)
        if state.startswith("Running"):
            got[name.split(".")[0].removeprefix("ml-workshop-user-")] = node
    return got


@pytest.fixture(scope="module")
def hub():
    # the per-server class is over: its servers stop (their work stays on each server)
    for node in NODES:  # (containers of Swarm tasks, from an earlier run on a dev site, are not theirs)
        instance(node).run(
            "docker ps --filter label=ml-workshop.user --format '{{.ID}} {{.Label \"com.docker.swarm.task.id\"}}'"
            " | awk '$2 == \"\" {print $1}' | xargs -r docker rm -f"
        )
    if not os.environ.get("MLW_CLUSTER_CONVERGED"):  # (set on a dev site already in cluster mode)
        playbook(
            "-e",
            "workshop_hub_mode=cluster",
            "-e",
            '{"hub_roster": [], "workshop_services_hcie_npu_ids": []}',
        )
    h = ClusterHub()
    h.wait_api()
    return h


def test_one_hub_and_a_swarm_of_npu_nodes(hub, host):
    assert host.service("jupyterhub").is_running
    for node in NODES:
        n = instance(node)
        assert not n.service("jupyterhub").is_running, f"{node} still runs its per-server hub"
        assert (
            n.check_output("docker info -f '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'")
            == "active false"
        )
        assert n.check_output("docker info -f '{{.DefaultRuntime}}'") == "ascend"
    labels = {
        node: host.check_output(
            f"docker node inspect -f '{{{{index .Spec.Labels \"ml-workshop.npus\"}}}}' {node}"
        )
        for node in NODES
    }
    assert labels == {"npu1": "0,1,2,3,4,5,6,7", "npu2": "0,1,2,3"}
    assert "ml-workshop-user:latest" in host.check_output(
        "docker node inspect -f '{{index .Spec.Labels \"ml-workshop.images\"}}' npu2"
    )
    # the join token never reached the control node's disk (the swarm role keeps it in memory)
    found = subprocess.run(["grep", "-rl", "SWMTKN-", str(ARTIFACTS)], capture_output=True, text=True)
    assert found.stdout == ""


def test_students_sign_up_on_the_one_url_and_are_approved_on_the_one_admin_page(hub, host, browser):
    su = hub.host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    ctx = browser.new_context()
    page = ctx.new_page()
    signup(page, hub.base, STUDENTS[0])  # a real browser for the first: the page a student sees
    assert "error" not in page.url
    ctx.close()
    approve(browser, hub.base, su, STUDENTS[0], shot="cluster-authorize.png")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda u: hub.signup_and_approve(u, PASSWORD), STUDENTS[1:]))
    rows = hub.sql("select username from users_info where is_authorized=1").split()
    assert set(STUDENTS) <= set(rows)


def test_exclusive_placement_fills_both_nodes_and_refuses_the_last(hub, host):
    runners = STUDENTS[:-1]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda u: hub.start(u, timeout=300), runners))
    where = tasks_by_user(host)
    assert set(where) == set(runners), where
    per_node = {n: sorted(u for u, w in where.items() if w == n) for n in NODES}
    assert {n: len(us) for n, us in per_node.items()} == STUDENT_NPUS, per_node
    for u in runners:
        hub.answers(u)  # through the one hub's proxy to the node's published Jupyter port
    # the last student: no NPU free anywhere, in the student's words
    hub.api("POST", f"/users/{LAST}")
    r = hub.api("POST", f"/users/{LAST}/server")
    assert r.status_code == 409, (r.status_code, r.text[:300])
    assert "No free NPU on any of the 2 servers" in r.json()["message"]
    assert LAST not in tasks_by_user(host)


def test_the_admin_page_shows_each_servers_node(hub, host, browser):
    where = tasks_by_user(host)
    assert where, "no student's server runs"
    su = hub.host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    ctx = browser.new_context()
    page = ctx.new_page()
    login(page, hub.base, "superuser", su)
    page.goto(f"{hub.base}/hub/admin")
    for u, node in sorted(where.items())[:2]:
        page.wait_for_selector(f"[data-testid='user-row-{u}']")
        page.click(f"[data-testid='{u}-collapse-button']")
        details = page.locator(f"[data-testid='{u}-collapse']")
        details.wait_for()
        text = details.inner_text()
        assert node in text and "node" in text, (u, node, text[:800])
        if not (ARTIFACTS / "cluster-admin.png").exists():
            page.screenshot(path=str(ARTIFACTS / "cluster-admin.png"), full_page=True)
    ctx.close()


def test_each_container_sees_exactly_its_own_npu(hub, host):
    where = tasks_by_user(host)
    assert len(where) == sum(STUDENT_NPUS.values()), where
    seen = {n: [] for n in NODES}
    for u, node in sorted(where.items()):
        n = instance(node)
        cid = n.check_output(f"docker ps -q --filter label=ml-workshop.user={u}")
        devs = n.check_output(f"docker exec {cid} sh -c 'ls /dev | grep -E \"^davinci\" | sort'").split()
        env = n.check_output(f"docker exec {cid} printenv ASCEND_VISIBLE_DEVICES")
        assert devs == sorted([f"davinci{env}", "davinci_manager"]), (u, node, devs, env)
        seen[node].append(int(env))
    assert {n: sorted(ids) for n, ids in seen.items()} == {n: list(range(c)) for n, c in STUDENT_NPUS.items()}


def test_only_the_hub_reaches_a_students_jupyter_port(hub, host):
    where = tasks_by_user(host)
    u = next(u for u, n in sorted(where.items()) if n == "npu1")
    state = json.loads(host.check_output("cat /var/lib/jupyterhub/ml-workshop-state.json"))
    port = state["ports"]["jupyter"][u]
    probe = f"python3 -c 'import socket; socket.create_connection((\"{address_of('npu1')}\", {port}), 5)'"
    assert host.run(probe).rc == 0  # the hub's host (its proxy connects here)
    assert instance("npu2").run(probe).rc != 0  # another node of the classroom network
    with pytest.raises(OSError):
        socket.create_connection((address_of("npu1"), port), timeout=5).close()  # the control node
    assert "MLW-CLUSTER-JUPYTER" in instance("npu1").check_output("iptables -S DOCKER-USER")


def test_second_start_same_node_same_files_and_ssh_on_the_node(hub, host):
    u = STUDENTS[1]
    node = tasks_by_user(host)[u]
    marker = f"written on {node} at {time.time()}"
    r = hub.user_server(
        u,
        "/api/contents/work/cluster-marker.txt",
        method="PUT",
        json={"type": "file", "format": "text", "content": marker},
    )
    assert r.status_code in (200, 201), r.text[:300]
    state = hub.server_state(u)
    assert hub.api("DELETE", f"/users/{u}/server").status_code in (202, 204)
    hub.wait_stopped(u)
    assert state is not None
    hub.start(u, timeout=300)
    assert tasks_by_user(host)[u] == node
    r = hub.user_server(u, "/api/contents/work/cluster-marker.txt")
    assert r.status_code == 200 and r.json()["content"] == marker
    # sshd of the student's server answers on the node, on the student's stable SSH port
    port = int(
        on_node(
            node,
            f"docker ps --filter label=ml-workshop.user={u} --format '{{{{.Label \"ml-workshop.ssh-port\"}}}}'",
        )
    )
    with socket.create_connection((address_of(node), port), timeout=10) as s:
        assert s.recv(64).startswith(b"SSH-2.0-")
    # the connection page gives the node's address and that port (SSH, VS Code Remote-SSH)
    session, _ = hub.login(u, PASSWORD)
    page = session.get(f"{hub.base}/hub/connection", timeout=30).text
    assert f"ssh -p {port} root@{address_of(node)}" in page, page[:2000]


def test_a_drained_node_takes_no_new_servers(hub, host):
    where = tasks_by_user(host)
    # two of npu1's students leave: room on npu1 only
    leaving = [u for u, n in sorted(where.items()) if n == "npu1"][:2]
    for u in leaving:
        hub.api("DELETE", f"/users/{u}/server")
    for u in leaving:
        hub.wait_stopped(u)
    home_npu2 = next(u for u, n in sorted(where.items()) if n == "npu2")
    host.check_output("docker node update --availability drain npu2")
    try:
        # Swarm stops the tasks of a drained node (ours cannot move: their work is there)
        hub.wait_stopped(home_npu2, timeout=120)
        hub.start(LAST, timeout=300)  # no home yet: placed where there is room and the node is active
        assert tasks_by_user(host)[LAST] == "npu1"
        r = hub.api("POST", f"/users/{home_npu2}/server")
        assert r.status_code in (409, 503), (r.status_code, r.text[:300])
        assert "npu2" in r.json()["message"]
    finally:
        host.check_output("docker node update --availability active npu2")


def test_hub_restart_keeps_every_running_server(hub, host):
    before = tasks_by_user(host)
    assert len(before) == STUDENT_NPUS["npu1"] - 1, (
        before
    )  # the drain test: npu1 less two, plus the last student
    ids = host.check_output("docker service ls -q --filter label=ml-workshop.user | sort")
    host.check_output("systemctl restart jupyterhub")
    hub.wait_api()
    time.sleep(5)
    assert tasks_by_user(host) == before
    assert host.check_output("docker service ls -q --filter label=ml-workshop.user | sort") == ids
    for u in before:
        assert (hub.server_state(u) or {}).get("ready"), u
        hub.answers(u)
    assert requests.get(f"{hub.base}/hub/health", timeout=10).status_code == 200
