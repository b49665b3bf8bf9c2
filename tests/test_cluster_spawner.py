"""ClusterSpawner (cluster mode, issue 14) against a fake Swarm manager: dockerspawner's own
SwarmSpawner code runs (create_service with its TaskTemplate/EndpointSpec, get_task, poll, stop),
only the Engine API answers are fakes. Needs jupyterhub + dockerspawner (the hub venv)."""

import asyncio
import itertools
import logging
from types import SimpleNamespace

import pytest

pytest.importorskip("dockerspawner")

import requests
from docker import errors as docker_errors
from dockerspawner import SwarmSpawner

from ml_workshop import cluster, messages, refusals, swarm
from ml_workshop.spawner import WorkshopSpawner

IMAGE = "ml-workshop-user:latest"


def _not_found(what):
    r = requests.Response()
    r.status_code = 404
    return docker_errors.NotFound(f"{what} not found", response=r)


class FakeSwarm:
    """The answers of a Swarm manager with NPU nodes: services become one task each on the node
    of their `node.hostname==` constraint, running at once (or rejected with `reject[node]`)."""

    def __init__(self, nodes):
        self.nodes = {n["name"]: n for n in nodes}
        self.services = {}
        self.tasks = {}
        self.ids = itertools.count(1)
        self.reject = {}
        self.created = []

    def node_objects(self):
        out = []
        for n in self.nodes.values():
            labels = {swarm.NODE_NPUS: n["npus"]} if n.get("npus") else {}
            if n.get("images") is not None:
                labels[swarm.NODE_IMAGES] = ",".join(n["images"])
            out.append(
                {
                    "ID": "id-" + n["name"],
                    "Description": {"Hostname": n["name"]},
                    "Spec": {"Labels": labels, "Availability": n.get("availability", "active")},
                    "Status": {"State": n.get("state", "ready"), "Addr": n["addr"]},
                }
            )
        return out

    def _service(self, key):
        for sid, svc in self.services.items():
            if key in (sid, svc["Spec"]["Name"]):
                return sid, svc
        raise _not_found(f"service {key}")

    async def __call__(self, method, *args, **kw):
        if method == "nodes":
            return self.node_objects()
        if method == "inspect_service":
            return self._service(args[0])[1]
        if method == "remove_service":
            sid, _ = self._service(args[0])
            del self.services[sid]
            self.tasks.pop(sid, None)
            return None
        if method == "create_service":
            task_template = kw.get("task_template") or args[0]
            name = kw["name"]
            if any(s["Spec"]["Name"] == name for s in self.services.values()):
                raise docker_errors.APIError("409 name conflicts with an existing object")
            sid = f"svc{next(self.ids)}"
            self.services[sid] = {"ID": sid, "Spec": {"Name": name, "Labels": kw.get("labels") or {}}}
            self.created.append((name, task_template, kw.get("endpoint_spec")))
            node = task_template["Placement"]["Constraints"][0].split("==")[1]
            cspec = task_template["ContainerSpec"]
            helper = (cspec.get("Command") or [None])[0] == "install"
            status = {"State": "complete" if helper else "running"}
            if node in self.reject:
                status = {"State": "rejected", "Err": self.reject[node]}
            ports = (kw.get("endpoint_spec") or {}).get("Ports") or []
            status["PortStatus"] = {
                "Ports": [
                    {
                        "TargetPort": p["TargetPort"],
                        "PublishedPort": p["PublishedPort"],
                        "PublishMode": "host",
                    }
                    for p in ports
                ]
            }
            self.tasks[sid] = {
                "ID": f"task-{sid}",
                "ServiceID": sid,
                "NodeID": "id-" + node,
                "DesiredState": "running",
                "Status": status,
                "Spec": {"ContainerSpec": cspec},
            }
            return {"ID": sid}
        if method == "tasks":
            f = kw.get("filters") or {}
            out = list(self.tasks.values())
            if "service" in f:
                sid, _ = self._service(f["service"])
                out = [t for t in out if t["ServiceID"] == sid]
            if f.get("desired-state") == "running":
                out = [t for t in out if t["DesiredState"] == "running"]
            return out
        if method == "service_logs":
            return iter([b"boom: cannot start\n"])
        raise AssertionError(method)

    def running_on(self, node):
        return [
            t
            for t in self.tasks.values()
            if t["NodeID"] == "id-" + node
            and t["Status"]["State"] == "running"
            and swarm.USER_LABEL in (t["Spec"]["ContainerSpec"].get("Labels") or {})
        ]


def make(tmp_path, fake, name, **kw):
    user = SimpleNamespace(name=name, url=f"/user/{name}/", id=1, escaped_name=name, admin=False)
    kw.setdefault("npu_policy", "exclusive")
    sp = cluster.ClusterSpawner(
        user=user,
        npu_access={},
        image=IMAGE,
        state_file=str(tmp_path / "state.json"),
        work_root="/srv/ml-workshop/student-work",
        content_dir="/srv/ml-workshop/workshop-content",
        mem_limit="1G",
        cpu_limit=1.0,
        **kw,
    )
    sp.docker = fake
    sp.log = logging.getLogger("test-cluster")

    async def no_command():
        return ["jupyterhub-singleuser"]

    sp.get_command = no_command
    sp.get_env = lambda: dict(sp.environment)
    return sp


@pytest.fixture(autouse=True)
def answering(monkeypatch):
    async def fake(self, url):
        fake.urls.append(url)
        return True

    fake.urls = []
    monkeypatch.setattr(WorkshopSpawner, "_answers", fake)
    return fake


def two_nodes():
    return FakeSwarm(
        [
            {"name": "npu1", "addr": "10.0.0.11", "npus": "0-7", "images": [IMAGE]},
            {"name": "npu2", "addr": "10.0.0.12", "npus": "0-3", "images": [IMAGE]},
        ]
    )


def start(sp):
    return asyncio.run(sp.start())


def refused(sp):
    with pytest.raises(refusals.StartRefused) as info:
        start(sp)
    return info.value


def env_of(task):
    return dict(e.split("=", 1) for e in task["Spec"]["ContainerSpec"]["Env"])


def test_is_a_swarm_spawner_with_the_workshop_contract():
    assert issubclass(cluster.ClusterSpawner, SwarmSpawner)
    assert issubclass(cluster.ClusterSpawner, WorkshopSpawner)


def test_thirteen_students_twelve_npus_spread_over_both_nodes(tmp_path, answering):
    fake = two_nodes()
    spawners = [make(tmp_path, fake, f"s{i:02d}") for i in range(13)]
    results = [start(sp) for sp in spawners[:12]]
    on1, on2 = fake.running_on("npu1"), fake.running_on("npu2")
    assert (len(on1), len(on2)) == (8, 4)
    # each node's NPU ids handed out once, as ASCEND_VISIBLE_DEVICES (the runtime's input)
    assert sorted(env_of(t)["ASCEND_VISIBLE_DEVICES"] for t in on1) == [str(i) for i in range(8)]
    assert sorted(env_of(t)["ASCEND_VISIBLE_DEVICES"] for t in on2) == [str(i) for i in range(4)]
    # the hub connects to the node's address and the Jupyter port published there
    assert {r[0] for r in results} == {"10.0.0.11", "10.0.0.12"}
    assert len({r[1] for r in results}) == 12 and all(29000 <= r[1] <= 29999 for r in results)
    assert all(u.startswith("http://10.0.0.1") for u in answering.urls)
    e = refused(spawners[12])
    assert e.mlw_reason == messages.NPU_FULL_CLUSTER and e.status_code == 409
    assert (
        "No free NPU" in e.jupyterhub_message and "2" in e.jupyterhub_message
    )  # both servers named by count


def test_service_spec_mounts_ports_and_limits(tmp_path):
    fake = two_nodes()
    sp = make(tmp_path, fake, "alice")
    ip, port = start(sp)
    name, tt, endpoint = next(c for c in fake.created if c[0].endswith("alice"))
    cs = tt["ContainerSpec"]
    assert tt["Placement"]["Constraints"] == ["node.hostname==npu1"]
    binds = {m["Target"]: (m["Source"], m["ReadOnly"]) for m in cs["Mounts"] if m["Type"] == "bind"}
    assert binds["/home/student/work"] == ("/srv/ml-workshop/student-work/alice", False)
    assert binds["/home/student/workshop"] == ("/srv/ml-workshop/workshop-content", True)
    assert "/home/student/students" not in binds  # a student sees nobody else's work
    assert cs["CapabilityDrop"] == ["ALL"] and "SYS_ADMIN" not in cs["CapabilityAdd"]
    assert tt["RestartPolicy"]["Condition"] == "none"
    assert tt["Resources"]["Limits"]["MemoryBytes"] == 1 << 30
    assert endpoint["Mode"] == "dnsrr"
    published = {p["TargetPort"]: p["PublishedPort"] for p in endpoint["Ports"]}
    assert published[8888] == port and 22222 <= published[22] <= 22999
    assert (ip, sp.node, sp.node_addr) == ("10.0.0.11", "npu1", "10.0.0.11")
    state = sp.get_state()
    assert (state["node"], state["node_addr"], state["jupyter_port"]) == ("npu1", "10.0.0.11", port)
    again = make(tmp_path, fake, "alice")
    again.load_state(state)
    assert (again.node, again.jupyter_host_port) == ("npu1", port)


def test_work_dir_made_once_per_node_then_the_student_stays_there(tmp_path):
    fake = two_nodes()
    sp = make(tmp_path, fake, "bob")
    start(sp)
    helpers = [c for c in fake.created if c[0].endswith("-workdir")]
    assert len(helpers) == 1
    cmd = helpers[0][1]["ContainerSpec"]["Command"]
    assert cmd[:2] == ["install", "-d"] and cmd[-1] == "/srv/ml-workshop/student-work/bob"
    assert not [s for s in fake.services.values() if s["Spec"]["Name"].endswith("-workdir")]  # removed
    asyncio.run(sp.stop())
    # others come and go meanwhile; bob comes back to npu1, no new helper
    for i in range(6):
        start(make(tmp_path, fake, f"o{i}"))
    assert len(fake.running_on("npu2")) > 0
    sp2 = make(tmp_path, fake, "bob")
    start(sp2)
    assert sp2.node == "npu1"
    assert len([c for c in fake.created if c[0].endswith("-workdir") and "bob" in c[0]]) == 1
    # npu1 full: bob's home has no NPU -> refused naming the node (no silent move without his work)
    asyncio.run(sp2.stop())
    n = 6
    while len(fake.running_on("npu1")) < 8:
        start(make(tmp_path, fake, f"o{n}"))
        n += 1
    assert len(fake.running_on("npu2")) < 4  # there is room elsewhere, but not with bob's work
    e = refused(make(tmp_path, fake, "bob"))
    assert e.mlw_reason == messages.HOME_NODE_FULL and "npu1" in e.jupyterhub_message


def test_a_drained_node_takes_no_new_server(tmp_path):
    fake = two_nodes()
    start(make(tmp_path, fake, "carol"))  # home npu1
    fake.nodes["npu1"]["availability"] = "drain"
    dave = make(tmp_path, fake, "dave")
    start(dave)
    assert dave.node == "npu2"
    carol = make(tmp_path, fake, "carol")
    # carol's server still runs on npu1: a second start changes nothing
    start(carol)
    assert carol.node == "npu1"


def test_home_node_drained_is_refused_by_name(tmp_path):
    fake = two_nodes()
    erin = make(tmp_path, fake, "erin")
    start(erin)
    asyncio.run(erin.stop())
    fake.nodes["npu1"]["availability"] = "drain"
    e = refused(make(tmp_path, fake, "erin"))
    assert e.mlw_reason == messages.HOME_NODE_UNAVAILABLE and "npu1" in e.jupyterhub_message


def test_a_rejected_task_ends_the_start_with_the_nodes_reason(tmp_path):
    fake = two_nodes()
    fake.reject["npu1"] = "invalid mount config for type bind: bind source path does not exist"
    e = refused(make(tmp_path, fake, "frank", start_timeout=30))
    assert e.mlw_reason == messages.START_FAILED
    assert "bind source path does not exist" in e.mlw_detail
    # the allocation is released: the next student gets the NPU
    fake.reject.clear()
    g = make(tmp_path, fake, "gina")
    start(g)
    assert g.npu_allocated == [0]


def test_missing_image_on_every_node_is_refused_naming_the_image(tmp_path):
    fake = FakeSwarm([{"name": "npu1", "addr": "10.0.0.11", "npus": "0-1", "images": ["other:1"]}])
    e = refused(make(tmp_path, fake, "hana"))
    assert e.mlw_reason == messages.IMAGE_MISSING_ON_NODE and IMAGE in e.jupyterhub_message


def test_profile_form_offers_what_the_nodes_have(tmp_path):
    fake = FakeSwarm(
        [
            {"name": "npu1", "addr": "a", "npus": "0", "images": [IMAGE, "hcie:1"]},
            {"name": "npu2", "addr": "b", "npus": "0", "images": [IMAGE]},
        ]
    )
    sp = make(tmp_path, fake, "ivan")
    assert asyncio.run(sp.available_images()) == sorted([IMAGE, "hcie:1"])
    fake.nodes["npu1"]["availability"] = "drain"
    assert asyncio.run(sp.available_images()) == [IMAGE]


def test_size_bytes():
    assert cluster.size_bytes("2g") == 2 << 30
    assert cluster.size_bytes("512m") == 512 << 20
    assert cluster.size_bytes("1G") == 1 << 30
    assert cluster.size_bytes(None) == 0 and cluster.size_bytes(1234) == 1234


def test_a_work_dir_helper_holds_no_npu_and_a_starting_server_holds_its_own(tmp_path):
    """While A's start is under way (its work-dir helper task runs, its server task does not
    exist yet), B's placement counts A's NPU as taken (the state's `placed`, A is spawning)."""
    fake = FakeSwarm([{"name": "npu1", "addr": "a", "npus": "0-1", "images": [IMAGE]}])
    a = make(tmp_path, fake, "ann")
    b = make(tmp_path, fake, "ben")
    profile = a.profile_list()[0]
    a._place_locked("ann", {"ann"}, fake.node_objects(), [], profile)
    helper = {
        "NodeID": "id-npu1",
        "DesiredState": "running",
        "Status": {"State": "running"},
        "Spec": {"ContainerSpec": {"Labels": {cluster.HELPER_LABEL: "ann"}}},
    }
    ids, _ = b._place_locked("ben", {"ann", "ben"}, fake.node_objects(), [helper], profile)
    assert a.npu_allocated == [] and a._placement.npus == [0] and ids == [1]
