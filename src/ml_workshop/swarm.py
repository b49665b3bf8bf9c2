"""Cluster mode on Docker Swarm: reading the nodes and tasks, and the service a student's server
runs as (issue 14). Pure: the data in is what the Engine API answers (`docker node inspect`,
`docker service ps` / tasks); the data out is the raw API shape dockerspawner's SwarmSpawner
takes in its `extra_*_spec` settings (docker-py passes lists and dicts through unchanged).

What Swarm gives and lacks (Docker 20.10, API 1.41; moby/swarmkit#1244): a service cannot take
device nodes or a runtime — its tasks run with the engine's default runtime — so on NPU nodes the
Ascend Docker Runtime is the default runtime and the service passes ASCEND_VISIBLE_DEVICES with
explicit ids (never `all`, which the runtime refuses); the runtime adds the device nodes and the
driver mounts. Ports are published in host mode on the node that runs the task (no routing mesh:
it needs IPVS, and a student's SSH port belongs to one node), which Swarm allows only with the
`dnsrr` endpoint mode.

The nodes tell the hub what they have through labels the playbook sets
(`docker node update --label-add`): NODE_NPUS (`0-7`: the node's NPU ids; a node without it is
not an NPU server and never gets a student) and NODE_IMAGES (comma-separated image references
present on the node; absent: not known, not checked).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import alloc
from .placement import Node, Placement

NODE_NPUS = "ml-workshop.npus"
NODE_IMAGES = "ml-workshop.images"
USER_LABEL = "ml-workshop.user"
NPUS_LABEL = "ml-workshop.npus"
# task states (swarmkit api/types.proto) after which the task will not run again
ENDED = {"complete", "shutdown", "failed", "rejected", "orphaned", "remove"}


def nodes_from_inspect(inspected: Iterable[Mapping[str, Any]]) -> tuple[list[Node], dict[str, str]]:
    """The NPU nodes (placement.Node, in the given order) and {node name: address} from
    `docker node inspect` objects. The name is the node's hostname (what a placement constraint
    `node.hostname==NAME` matches); nodes without the NODE_NPUS label are left out."""
    nodes: list[Node] = []
    addrs: dict[str, str] = {}
    for n in inspected:
        spec = n.get("Spec") or {}
        labels = spec.get("Labels") or {}
        if NODE_NPUS not in labels:
            continue
        name = str((n.get("Description") or {}).get("Hostname") or "")
        if not name:
            continue
        status = n.get("Status") or {}
        images = labels.get(NODE_IMAGES)
        nodes.append(
            Node(
                name=name,
                npu_ids=tuple(alloc.parse_id_list(labels[NODE_NPUS])),
                availability=str(spec.get("Availability") or "active"),
                ready=status.get("State") == "ready",
                images=None if images is None else frozenset(i for i in images.split(",") if i),
            )
        )
        addrs[name] = str(status.get("Addr") or "")
    return nodes, addrs


def node_ids(inspected: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """{node ID: hostname}: a task names its node by ID."""
    return {
        str(n["ID"]): str((n.get("Description") or {}).get("Hostname") or "") for n in inspected if "ID" in n
    }


def published_port(task: Mapping[str, Any], target: int) -> int | None:
    """The host port the task publishes for container port `target` (host mode: the task's
    Status.PortStatus, not the service's endpoint)."""
    for p in ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []:
        if p.get("TargetPort") == target and p.get("PublishedPort"):
            return int(p["PublishedPort"])
    return None


def task_endpoint(
    task: Mapping[str, Any], ids: Mapping[str, str], addrs: Mapping[str, str], target: int
) -> tuple[str, str, int]:
    """(node name, node address, published port) of a running task: where the hub's proxy sends
    the student's requests and where SSH answers. ValueError when the task has no node or port."""
    node = ids.get(str(task.get("NodeID") or ""), "")
    if not node:
        raise ValueError(f"task {task.get('ID', '?')} runs on no known node")
    port = published_port(task, target)
    if port is None:
        raise ValueError(f"task {task.get('ID', '?')} publishes no port for {target}")
    return node, addrs.get(node) or node, port


def task_state(task: Mapping[str, Any] | None) -> str:
    """The task's state in lower case ('' when there is no task)."""
    if not task:
        return ""
    return str((task.get("Status") or {}).get("State") or "").lower()


def running_from_tasks(
    tasks: Iterable[Mapping[str, Any]], ids: Mapping[str, str]
) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{user: (node, npu ids)} of the students' tasks that run or are about to (the placement's
    `running`), from their labels; a task on a node that is gone or whose state ended is not
    running (its NPUs are free again)."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for t in tasks:
        labels = ((t.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
        user = labels.get(USER_LABEL)
        node = ids.get(str(t.get("NodeID") or ""), "")
        if not user or not node or task_state(t) in ENDED:
            continue
        desired = str(t.get("DesiredState") or "running").lower()
        if desired != "running":
            continue
        out[str(user)] = (node, tuple(alloc.parse_id_list(labels.get(NPUS_LABEL, ""))))
    return out


def service_env(placement: Placement) -> dict[str, str]:
    """What the spawner adds to the server's environment: its NPUs for the Ascend runtime, with
    explicit ids (an empty value gives none)."""
    return {"ASCEND_VISIBLE_DEVICES": alloc.format_id_list(placement.npus)}


def service_extras(
    *,
    username: str,
    placement: Placement,
    jupyter_port: int,
    published_jupyter: int,
    ssh_port: int,
    binds: Iterable[tuple[str, str, bool]],
    cap_add: Iterable[str],
    pids_limit: int,
    shm_bytes: int,
    mem_bytes: int = 0,
    nano_cpus: int = 0,
    labels: Mapping[str, str] | None = None,
    hostname: str = "",
    extra_ports: Mapping[int, int] | None = None,
    init: bool = True,
) -> dict[str, dict[str, Any]]:
    """SwarmSpawner's extra_*_spec for one student's server (docker-py's ContainerSpec,
    TaskTemplate and EndpointSpec keyword arguments; raw API dicts where docker-py has no type):
    the node (placement constraint); labels naming the student and the NPUs; every mount (the
    work and content binds as (source, target, read_only), /dev/shm as a tmpfs: Swarm has no shm
    size) — they replace SwarmSpawner's own; capabilities (all dropped, `cap_add` back) and an
    init; the task's limits with pids (docker-py's Resources has no pids, so the whole raw
    resources, which replace SwarmSpawner's); no restart (a server that exits is shown stopped;
    the student starts it again); host-mode ports on the node (Jupyter for the hub's proxy, sshd
    for the student, and a profile's own ports: {container port: host port}) with dnsrr, as Swarm
    wants with host ports."""
    limits: dict[str, int] = {"Pids": int(pids_limit)}
    if mem_bytes:
        limits["MemoryBytes"] = int(mem_bytes)
    if nano_cpus:
        limits["NanoCPUs"] = int(nano_cpus)
    mounts: list[dict[str, Any]] = [
        {"Type": "bind", "Source": src, "Target": dst, "ReadOnly": bool(ro)} for src, dst, ro in binds
    ]
    mounts.append({"Type": "tmpfs", "Target": "/dev/shm", "TmpfsOptions": {"SizeBytes": int(shm_bytes)}})
    ports = [(int(jupyter_port), int(published_jupyter)), (22, int(ssh_port))]
    ports += sorted((int(c), int(h)) for c, h in (extra_ports or {}).items())
    container_spec: dict[str, Any] = {
        "labels": {USER_LABEL: username, NPUS_LABEL: alloc.format_id_list(placement.npus)}
        | dict(labels or {}),
        "mounts": mounts,
        "cap_add": sorted(set(cap_add)),
        "cap_drop": ["ALL"],
        "init": bool(init),  # Docker's init as PID 1 unless the image runs its own (tini)
    }
    if hostname:
        container_spec["hostname"] = hostname
    return {
        "extra_placement_spec": {"constraints": [f"node.hostname=={placement.node}"]},
        "extra_container_spec": container_spec,
        "extra_task_spec": {
            "restart_policy": {"Condition": "none", "MaxAttempts": 0},
            "resources": {"Limits": limits},
        },
        "extra_endpoint_spec": {
            "mode": "dnsrr",
            "ports": [
                {"Protocol": "tcp", "TargetPort": c, "PublishedPort": h, "PublishMode": "host"}
                for c, h in ports
            ],
        },
    }
