"""Cluster mode's Swarm data (src/ml_workshop/swarm.py): nodes and tasks as the Engine API gives
them, and the service spec of a student's server as SwarmSpawner builds it from our extras."""

import pytest
from docker.types import ContainerSpec, EndpointSpec, Placement, TaskTemplate

from ml_workshop import swarm
from ml_workshop.placement import Placement as Where
from ml_workshop.placement import Running, place


def node(id_, host, labels=None, availability="active", state="ready", addr="10.0.0.1"):
    """A `docker node inspect` object (Engine API 1.41, the fields we read)."""
    return {
        "ID": id_,
        "Spec": {"Labels": labels or {}, "Role": "worker", "Availability": availability},
        "Description": {"Hostname": host},
        "Status": {"State": state, "Addr": addr},
    }


INSPECT = [
    node("m1", "hub", {}, addr="10.0.0.10"),  # the manager holding the hub: no NPU label
    node("w1", "npu-a", {swarm.NODE_NPUS: "0-7", swarm.NODE_IMAGES: "user:1,hcie:1"}, addr="10.0.0.11"),
    node("w2", "npu-b", {swarm.NODE_NPUS: "0,1,2,3"}, availability="drain", addr="10.0.0.12"),
    node("w3", "npu-c", {swarm.NODE_NPUS: "0-1"}, state="down", addr="10.0.0.13"),
]


def task(id_, node_id, user, npus, state="running", desired="running", ports=((8888, 30001), (22, 22222))):
    return {
        "ID": id_,
        "NodeID": node_id,
        "DesiredState": desired,
        "Spec": {"ContainerSpec": {"Labels": {swarm.USER_LABEL: user, swarm.NPUS_LABEL: npus}}},
        "Status": {
            "State": state,
            "PortStatus": {
                "Ports": [
                    {"Protocol": "tcp", "TargetPort": t, "PublishedPort": p, "PublishMode": "host"}
                    for t, p in ports
                ]
            },
        },
    }


def test_nodes_from_inspect_reads_npus_availability_state_and_images():
    nodes, addrs = swarm.nodes_from_inspect(INSPECT)
    assert [n.name for n in nodes] == ["npu-a", "npu-b", "npu-c"]  # the hub's manager is no NPU server
    a, b, c = nodes
    assert (
        a.npu_ids == tuple(range(8)) and a.takes_new_servers and a.images == frozenset({"user:1", "hcie:1"})
    )
    assert b.npu_ids == (0, 1, 2, 3) and not b.takes_new_servers and b.state == "drain" and b.images is None
    assert not c.takes_new_servers and c.state == "down"
    assert addrs == {"npu-a": "10.0.0.11", "npu-b": "10.0.0.12", "npu-c": "10.0.0.13"}
    assert swarm.node_ids(INSPECT)["w2"] == "npu-b"


def test_tasks_give_the_placements_running_and_the_endpoint():
    ids = swarm.node_ids(INSPECT)
    tasks = [
        task("t1", "w1", "ann", "0"),
        task("t2", "w2", "bob", "1", state="starting"),
        task("t3", "w1", "cy", "1", state="failed", desired="shutdown"),  # ended: NPU 1 of npu-a is free
        task("t4", "w9", "dee", "2"),  # a node that left the cluster
        task("t5", "w1", "eve", "3", desired="shutdown"),  # being stopped
        {"ID": "t6", "NodeID": "w1", "Status": {"State": "running"}},  # not a student's (no labels)
    ]
    assert swarm.running_from_tasks(tasks, ids) == {"ann": ("npu-a", (0,)), "bob": ("npu-b", (1,))}
    _, addrs = swarm.nodes_from_inspect(INSPECT)
    assert swarm.task_endpoint(tasks[0], ids, addrs, 8888) == ("npu-a", "10.0.0.11", 30001)
    assert swarm.published_port(tasks[0], 22) == 22222
    with pytest.raises(ValueError, match="no known node"):
        swarm.task_endpoint(tasks[3], ids, addrs, 8888)
    with pytest.raises(ValueError, match="no port"):
        swarm.task_endpoint(task("t7", "w1", "x", "", ports=()), ids, addrs, 8888)
    assert swarm.task_state(None) == "" and swarm.task_state(tasks[1]) == "starting"


def test_placement_over_the_nodes_read_from_swarm():
    nodes, _ = swarm.nodes_from_inspect(INSPECT)
    running = {
        u: Running(n, ids)
        for u, (n, ids) in swarm.running_from_tasks(
            [task("t1", "w1", "ann", "0")], swarm.node_ids(INSPECT)
        ).items()
    }
    # only npu-a takes new servers (npu-b drained, npu-c down)
    assert place("exclusive", "bob", nodes, running, {}, image="user:1") == Where("npu-a", [1])


def test_service_extras_build_a_service_spec_with_the_node_npus_ports_and_limits():
    where = Where("npu-a", [2, 3])
    extras = swarm.service_extras(
        username="ann",
        placement=where,
        jupyter_port=8888,
        published_jupyter=30001,
        ssh_port=22222,
        binds=[
            ("/srv/ml-workshop/student-work/ann", "/home/student/work", False),
            ("/srv/ml-workshop/workshop-content", "/home/student/workshop", True),
        ],
        cap_add=["CHOWN", "SETUID", "SETGID", "CHOWN"],
        pids_limit=2048,
        shm_bytes=2 << 30,
        mem_bytes=8 << 30,
        nano_cpus=4_000_000_000,
    )
    assert swarm.service_env(where) == {"ASCEND_VISIBLE_DEVICES": "2,3"}
    assert swarm.service_env(Where("npu-a", [])) == {"ASCEND_VISIBLE_DEVICES": ""}
    # as SwarmSpawner.create_object builds it: its own kwargs, then ours with .update()
    container = {
        "image": "user:1",
        "env": {"JUPYTERHUB_API_TOKEN": "t"} | swarm.service_env(where),
        "mounts": [],
    }
    container.update(extras["extra_container_spec"])
    cspec = ContainerSpec(**container)
    placement = {"constraints": None, "preferences": None, "platforms": None} | extras["extra_placement_spec"]
    task_kwargs = {
        "container_spec": cspec,
        "resources": None,
        "networks": [],
        "placement": Placement(**placement),
    }
    task_kwargs.update(extras["extra_task_spec"])
    tt = TaskTemplate(**task_kwargs)
    ep = EndpointSpec(**extras["extra_endpoint_spec"])
    assert tt["Placement"]["Constraints"] == ["node.hostname==npu-a"]
    assert "ASCEND_VISIBLE_DEVICES=2,3" in cspec["Env"]
    assert cspec["Labels"] == {swarm.USER_LABEL: "ann", swarm.NPUS_LABEL: "2,3"}
    assert cspec["CapabilityDrop"] == ["ALL"] and cspec["CapabilityAdd"] == ["CHOWN", "SETGID", "SETUID"]
    assert cspec["Init"] is True
    targets = {m["Target"]: m for m in cspec["Mounts"]}
    assert (
        targets["/home/student/workshop"]["ReadOnly"] is True
        and targets["/home/student/work"]["ReadOnly"] is False
    )
    assert targets["/dev/shm"] == {
        "Type": "tmpfs",
        "Target": "/dev/shm",
        "TmpfsOptions": {"SizeBytes": 2 << 30},
    }
    assert tt["Resources"] == {"Limits": {"Pids": 2048, "MemoryBytes": 8 << 30, "NanoCPUs": 4_000_000_000}}
    assert tt["RestartPolicy"]["Condition"] == "none"
    assert ep["Mode"] == "dnsrr"
    assert {(p["TargetPort"], p["PublishedPort"], p["PublishMode"]) for p in ep["Ports"]} == {
        (8888, 30001, "host"),
        (22, 22222, "host"),
    }
