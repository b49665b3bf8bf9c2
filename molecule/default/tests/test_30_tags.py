"""Every tag command the README documents, run on the converged site (issue 11).

For each command: 0 failed and 0 changed on an unchanged site. Then, for the roles an operator
changes most (hub, services, docker), one of the role's variables is changed with -e: only that
role's tasks change, and nothing else restarts — the students' containers keep running, the HCIE
container keeps its NPU (npu2), the hub keeps its process when only the services change. The same
command without -e puts the site back (and must change only that role again).

Runs after test_20 (alice and bob still run from test_10) and before the fault suite.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess

import pytest
from conftest import PREFIX, instance

REPO = os.environ.get("MLW_REPO", ".")
CONVERGE = os.path.join(REPO, "molecule", "default", "converge.yml")
LOGS = os.environ.get("MLW_ARTIFACTS_DIR", "/tmp")
NPU = [f"{PREFIX}-npu1", f"{PREFIX}-npu2"]

testinfra_hosts = [f"ansible://{PREFIX}-npu2"]  # the suite drives the whole site itself

# (name, ansible-playbook arguments): README "Configuring a site" and "Day-2 operations".
UNCHANGED = [
    ("hub", ["--tags", "hub"]),
    ("services", ["--tags", "services"]),
    ("docker", ["--tags", "docker"]),
    ("images,hub", ["--tags", "images,hub"]),
    ("ascend", ["--tags", "ascend"]),
    ("cache_proxy", ["--tags", "cache_proxy"]),
    ("cache_client", ["--tags", "cache_client"]),
    ("preflight", ["--tags", "preflight"]),
    ("configure", ["--tags", "configure"]),
    ("service", ["--tags", "service"]),
]
# The last documented command, `--limit newhost,cache1` (adding a server), is the fault suite's
# interrupted converge (test_80_faults.py): killed in the middle, run again, it must change nothing
# — one near-full converge of two hosts serves both checks.


# The suite's runs share one fact cache (filled once by `facts_cached`): facts do not change
# between them, so each run skips gathering them on the three hosts.
FACT_CACHE = os.path.join(LOGS, "tags-fact-cache")
FACT_CACHE_ENV = {
    "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
    "ANSIBLE_CACHE_PLUGIN_CONNECTION": FACT_CACHE,
    "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "7200",
}


class Run:
    """One ansible-playbook run, read through the ansible.posix.json callback."""

    def __init__(self, name: str, args: list[str]):
        inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
        # no other callbacks (the harness may enable timing ones): stdout must be the JSON alone
        env = dict(
            os.environ,
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_FORCE_COLOR="0",
            **FACT_CACHE_ENV,
        )
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # an empty value is an error in ansible-core 2.19
        p = subprocess.run(
            ["ansible-playbook", "-i", inventory, CONVERGE, *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        self.log = os.path.join(LOGS, "tags-" + "".join(c if c.isalnum() else "_" for c in name) + ".json")
        with open(self.log, "w") as f:
            f.write(p.stdout + "\n" + p.stderr)
        self.rc = p.returncode
        try:
            data = json.loads(p.stdout)
        except json.JSONDecodeError as err:
            raise AssertionError(
                f"no JSON from ansible-playbook {args} (rc {p.returncode}); see {self.log}"
            ) from err
        self.stats = data["stats"]
        self.changed: list[tuple[str, str, str]] = []  # (host, role, task)
        self.failed: list[tuple[str, str, str]] = []
        for play in data["plays"]:
            for task in play["tasks"]:
                path = task["task"].get("path", "")
                role = path.split("/roles/", 1)[1].split("/", 1)[0] if "/roles/" in path else "-"
                for host, res in task["hosts"].items():
                    if res.get("changed"):
                        self.changed.append((host, role, task["task"]["name"]))
                    if res.get("failed") and not res.get("ignore_errors"):
                        self.failed.append((host, role, task["task"]["name"]))

    def ok(self) -> None:
        bad = {h: s for h, s in self.stats.items() if s.get("failures") or s.get("unreachable")}
        assert self.rc == 0 and not bad, f"rc {self.rc}, {bad}, failed tasks {self.failed}; see {self.log}"

    def roles_changed(self) -> set[str]:
        return {role for _, role, _ in self.changed}


def snapshot(host_of) -> dict:
    """What must not move: containers (id, start time), the hub's process, daemon.json."""
    snap = {}
    for name in NPU:
        h = host_of(name)
        ps = h.check_output("docker ps --no-trunc --format '{{.Names}} {{.ID}}'").split("\n")
        containers = {}
        for line in filter(None, ps):
            cname, cid = line.split()
            started = h.check_output(f"docker inspect -f '{{{{.State.StartedAt}}}}' {cid}")
            containers[cname] = (cid, started)
        snap[name] = {
            "containers": containers,
            "hub_pid": h.check_output("systemctl show -p MainPID --value jupyterhub"),
            "proxy_pid": h.check_output("systemctl show -p MainPID --value configurable-http-proxy"),
            "daemon_json": h.check_output("sha256sum /etc/docker/daemon.json"),
        }
    return snap


@pytest.fixture(scope="module")
def host_of():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = instance(name.removeprefix(f"{PREFIX}-"))
        return cache[name]

    return get


@pytest.fixture(scope="module")
def before(host_of):
    snap = snapshot(host_of)
    students = [c for c in snap[NPU[0]]["containers"] if c.startswith("ml-workshop-user-")]
    assert students, "test_10 leaves alice running on npu1; nothing runs"
    assert "ml-workshop-hcie" in snap[NPU[1]]["containers"]
    return snap


@pytest.fixture(scope="module")
def facts_cached():
    """Gather every host's facts once into the suite's fact cache (before runs read it in parallel)."""
    shutil.rmtree(FACT_CACHE, ignore_errors=True)
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    env = dict(os.environ, **FACT_CACHE_ENV)
    p = subprocess.run(
        ["ansible", "-i", inventory, "all", "-m", "ansible.builtin.setup"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    # one file per host (ansible-core 2.19's jsonfile names them with a prefix: s1_<host>)
    files = os.listdir(FACT_CACHE)
    for h in ("cache", "npu1", "npu2"):
        assert any(f.endswith(f"{PREFIX}-{h}") for f in files), (h, files)


@pytest.fixture(scope="module")
def unchanged_runs(before, facts_cached):
    """The unchanged-site commands, two at a time: each only reads an unchanged site (a write would
    be the 'changed' this suite looks for), so they do not disturb each other; most of a run is
    waiting on the instances, so two at once use the test machine's two cores better."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(Run, name, args) for name, args in UNCHANGED}
    return futures


@pytest.mark.parametrize("name, args", UNCHANGED, ids=[n for n, _ in UNCHANGED])
def test_documented_tag_command_changes_nothing(name, args, unchanged_runs):
    run = unchanged_runs[name].result()  # re-raises what Run raised (no JSON from the run)
    run.ok()
    assert not run.changed, f"`{' '.join(args)}` changed an unchanged site: {run.changed}; see {run.log}"


def _hcie_npus(h) -> set[int]:
    info = json.loads(h.check_output("docker inspect ml-workshop-hcie"))[0]
    return {
        int(d["PathOnHost"].removeprefix("/dev/davinci"))
        for d in info["HostConfig"]["Devices"]
        if d["PathOnHost"].removeprefix("/dev/davinci").isdigit()
    }


# (tag, a changed value of one of its role's variables, the role, what may restart)
CHANGES = [
    ("hub", {"hub_culler_timeout": 3599}, "hub", {"hub"}),
    ("services", {"workshop_services_hcie_env": {"MLW_TAG_SUITE": "1"}}, "workshop_services", {"hcie"}),
    ("docker", {"docker_daemon_log_max_file": 4}, "docker", {"docker", "hcie"}),  # Requires=docker.service
]


@pytest.mark.parametrize("tag, extra, role, restarts", CHANGES, ids=[c[0] for c in CHANGES])
def test_one_role_changed_only_that_role_moves(tag, extra, role, restarts, host_of, before, facts_cached):
    first = snapshot(host_of)
    changed = Run(f"{tag}-changed", ["--tags", tag, "-e", json.dumps(extra)])
    changed.ok()
    assert changed.changed, f"changing {extra} with --tags {tag} changed nothing; see {changed.log}"
    assert changed.roles_changed() == {role}, f"{changed.changed}; see {changed.log}"
    after = snapshot(host_of)
    restore = Run(f"{tag}-restored", ["--tags", tag])
    restore.ok()
    assert restore.roles_changed() <= {role}, f"{restore.changed}; see {restore.log}"

    for name in NPU:
        was, now = first[name], after[name]
        for cname, (cid, started) in was["containers"].items():
            if cname == "ml-workshop-hcie" and "hcie" in restarts:
                continue
            assert now["containers"].get(cname) == (cid, started), f"{cname} on {name} restarted or went away"
        if "hub" not in restarts:
            assert now["hub_pid"] == was["hub_pid"], f"the hub on {name} restarted"
        # the proxy is its own unit: no change here restarts it (students keep their connections)
        assert now["proxy_pid"] == was["proxy_pid"], f"the proxy on {name} restarted"
        if "docker" not in restarts:
            assert now["daemon_json"] == was["daemon_json"], f"daemon.json on {name} changed"
    assert _hcie_npus(host_of(NPU[1])) == {3}, "the HCIE container lost its NPU"
