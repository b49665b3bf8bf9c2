"""ClusterSpawner: one hub for several NPU servers on Docker Swarm (issue 14, `hub_mode: cluster`).

dockerspawner's SwarmSpawner with the WorkshopSpawner's contract (profiles, refusals in the
student's words, stable ports, work and content mounts, limits, capabilities). Each server is a
one-task Swarm service placed on a node (`node.hostname==NAME`) by `placement.place` from what the
nodes and tasks say now (`swarm.nodes_from_inspect`, `swarm.running_from_tasks`): the NPU ids go
to the Ascend Docker Runtime (the nodes' default runtime) as ASCEND_VISIBLE_DEVICES; Jupyter and
sshd are published in host mode on the node, where the hub's proxy and the student connect.

State (StateStore, next to the per-server mode's tables): `placed` {user: {node, npus}} while a
start is under way or a server runs, `homes` {user: node} where each student's work directory is,
and the ports ({user: port} per kind, one number per student across the cluster).
"""

from __future__ import annotations

import asyncio
from typing import Any

from docker import errors as docker_errors
from docker.types import ContainerSpec, Mount, RestartPolicy, TaskTemplate
from docker.types import Placement as PlacementSpec
from dockerspawner import SwarmSpawner
from traitlets import Bool, Dict, Float, Integer, Tuple, Unicode, default

from . import alloc, container, messages, placement, profiles, swarm
from .spawner import _RUNNING, WorkshopSpawner

JUPYTER_PORTS = "jupyter"  # the state's ports table of the published Jupyter ports
HELPER_LABEL = "ml-workshop.helper"
# task states before "running" (swarmkit api/types.proto): wait for the next one
WAITING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}


def size_bytes(value: str | int | None) -> int:
    """Docker's size notation ("2g", "512m", "1G", 1073741824) in bytes; 0 for none."""
    if value in (None, "", 0):
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip().lower().removesuffix("b")
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def task_problem(task: dict[str, Any] | None) -> str:
    """Why a task that did not reach running ended ("" while it may still run)."""
    if not task:
        return "the service has no task"
    state = swarm.task_state(task)
    if state in WAITING or state == "running":
        return ""
    status = task.get("Status") or {}
    return str(status.get("Err") or status.get("Message") or state)


class ClusterSpawner(WorkshopSpawner, SwarmSpawner):
    """A student's server as a Swarm service on the NPU node `placement.place` chooses."""

    npu_static_map = Dict(config=True, help="{username: {node: NAME, npus: [ids]}} (static policy)")
    jupyter_port_range = Tuple(
        Integer(),
        Integer(),
        default_value=(29000, 29999),
        config=True,
        help="hub_cluster_jupyter_port_range: host ports of the students' Jupyter servers on the nodes",
    )
    work_shared = Bool(
        False,
        config=True,
        help="hub_cluster_work_shared: the work root is one shared directory on every node (NFS)",
    )
    helper_timeout = Float(90.0, config=True, help="seconds the work-directory task may take")

    node = Unicode("")  # where this server runs (or was last placed)
    node_addr = Unicode("")  # the node's address (the hub's proxy and the student connect there)
    jupyter_host_port = Integer(0)
    _placement: placement.Placement | None = None

    @default("pull_policy")
    def _cluster_pull_policy(self) -> str:
        return "skip"  # the nodes have the images (images role); the start checks the node's labels

    @default("network_name")
    def _cluster_network_name(self) -> str:
        return ""

    # --- what the nodes have ------------------------------------------------------------------

    async def available_images(self) -> list[str] | None:
        """The images of the nodes that take new servers (their NODE_IMAGES labels); None when a
        node does not say."""
        nodes, _ = swarm.nodes_from_inspect(await self.docker("nodes"))
        found: set[str] = set()
        for n in nodes:
            if not n.takes_new_servers:
                continue
            if n.images is None:
                return None
            found |= n.images
        return sorted(found)

    async def _image_config(self) -> dict[str, Any] | None:
        # the image is on a node, not on the hub's host: the placement checked the node's labels
        return {}

    # --- placement ----------------------------------------------------------------------------

    async def _allocate(self, profile: profiles.Profile | None = None) -> tuple[list[int], int]:
        user = self.user.name
        profile = profile or self.profile_list()[0]
        async with self._allocation_lock():
            spawning = set(self._spawning)
            inspected = await self.docker("nodes")
            tasks = await self.docker("tasks", filters={"desired-state": "running"})
            return self._place_locked(user, spawning, inspected, tasks, profile)

    def _place_locked(
        self,
        user: str,
        spawning: set[str],
        inspected: list[dict[str, Any]],
        tasks: list[dict[str, Any]],
        profile: profiles.Profile,
    ) -> tuple[list[int], int]:
        nodes, addrs = swarm.nodes_from_inspect(inspected)
        live = swarm.running_from_tasks(tasks, swarm.node_ids(inspected))
        with self.store.transaction() as st:
            placed, homes = st["placed"], st["homes"]
            for other in list(placed):
                if other != user and other not in live and other not in spawning:
                    del placed[other]  # a start that failed elsewhere or a server that ended
            running = {u: placement.Running(n, ids) for u, (n, ids) in live.items()}
            for other, where in placed.items():
                if other != user and other not in running:  # starting now: its task may not exist yet
                    running[other] = placement.Running(where["node"], tuple(where["npus"]))
            policy = self.npu_policy if profile.takes_npus else "static"
            static = self.npu_static_map if profile.takes_npus else {}
            where = placement.place(
                policy,
                user,
                nodes,
                running,
                homes,
                per_user=self.npu_per_user,
                static_map=static,
                image=profile.image,
                work_shared=self.work_shared,
            )
            port, extra = self._allocate_ports(st, user, profile)
            jtable = st["ports"].setdefault(JUPYTER_PORTS, {})
            try:
                jport = alloc.allocate_port(user, jtable, *self.jupyter_port_range, self.ssh_reserved_ports)
            except alloc.AllocationError as e:
                raise alloc.AllocationError(str(e), messages.SSH_PORTS_FULL) from e
            jtable[user] = jport
            placed[user] = {"node": where.node, "npus": list(where.npus)}
            self._home = homes.get(user, "")
        self._placement = where
        self.node = where.node
        self.node_addr = addrs.get(where.node) or where.node
        self.jupyter_host_port = jport
        self.profile_ports = extra
        return list(where.npus), port

    def _release(self) -> None:
        with self.store.transaction() as st:
            st["placed"].pop(self.user.name, None)

    def _record_home(self) -> None:
        with self.store.transaction() as st:
            st["homes"][self.user.name] = self.node

    _home = ""

    # --- the work directory on the node -------------------------------------------------------

    async def _prepare_work_dir(self) -> None:
        """The work directory on the chosen node: made by a one-task service there (as root, the
        work root mounted) the first time a student runs on a node; the hub's host cannot reach
        the node's disk."""
        if self._home == self.node:
            return
        path = container.work_dir(self.work_root, self.escaped_name)
        name = f"{self.object_name}-workdir"
        spec = ContainerSpec(
            image=self.image,
            command=["install", "-d", "-m", "0750", "-o", str(self.work_uid), "-g", str(self.work_gid), path],
            user="0:0",
            mounts=[Mount(target=self.work_root, source=self.work_root, type="bind")],
            # not the students' label: a helper is no server and holds no NPU (swarm.running_from_tasks)
            labels={HELPER_LABEL: self.user.name},
        )
        task = TaskTemplate(
            container_spec=spec,
            restart_policy=RestartPolicy(condition="none"),
            placement=PlacementSpec(constraints=[f"node.hostname=={self.node}"]),
        )
        try:
            await self.docker("remove_service", name)
        except docker_errors.NotFound:
            pass
        service = await self.docker("create_service", task, name=name, labels={HELPER_LABEL: self.user.name})
        loop = asyncio.get_running_loop()
        end = loop.time() + self.helper_timeout
        try:
            while True:
                tasks = await self.docker("tasks", filters={"service": service["ID"]})
                state = swarm.task_state(tasks[0]) if tasks else ""
                if state == "complete":
                    return
                if tasks and state not in WAITING and state != "running":
                    raise self._refuse(
                        messages.START_FAILED,
                        detail=f"work directory {path} on {self.node}: {task_problem(tasks[0])}",
                    )
                if loop.time() > end:
                    raise self._refuse(
                        messages.START_TIMEOUT,
                        seconds=round(self.helper_timeout),
                        detail=f"work directory {path} on {self.node} not made in time",
                    )
                await asyncio.sleep(0.3)
        finally:
            try:
                await self.docker("remove_service", service["ID"])
            except docker_errors.APIError:
                self.log.warning("Could not remove the helper service %s", name, exc_info=True)

    # --- the service --------------------------------------------------------------------------

    def apply_allocation(
        self,
        ids: list[int],
        port: int,
        *,
        init: bool = True,
        profile: profiles.Profile | None = None,
        extra_ports: dict[str, int] | None = None,
    ) -> None:
        """SwarmSpawner's extra_*_spec for this start (swarm.service_extras)."""
        profile = profile or self.profile_list()[0]
        where = self._placement or placement.Placement(self.node, list(ids))
        extra_ports = dict(extra_ports if extra_ports is not None else self.profile_ports)
        published = {s.container_port: extra_ports[s.name] for s in profile.ports if s.name in extra_ports}
        vols = container.check_no_docker_socket(self._student_volumes())
        binds = [(src, v["bind"], v["mode"] == "ro") for src, v in vols.items()]
        labels = container.label_values(
            self.user.name, where.npus, port, profile=profile.slug, ports=extra_ports
        )
        labels["ml-workshop.node"] = where.node
        extras = swarm.service_extras(
            username=self.user.name,
            placement=where,
            jupyter_port=self.port,
            published_jupyter=self.jupyter_host_port,
            ssh_port=port,
            binds=binds,
            cap_add=self.cap_add,
            pids_limit=self.pids_limit,
            shm_bytes=size_bytes(self.shm_size),
            mem_bytes=size_bytes(self.mem_limit),
            nano_cpus=int(float(self.cpu_limit or 0) * 1e9),
            labels=labels,
            hostname=container.hostname(self.escaped_name),
            extra_ports=published,
            init=init,
        )
        self.volumes = {}  # every mount is in extra_container_spec
        self.extra_placement_spec = extras["extra_placement_spec"]
        self.extra_container_spec = extras["extra_container_spec"]
        self.extra_task_spec = extras["extra_task_spec"]
        self.extra_endpoint_spec = extras["extra_endpoint_spec"]
        self.extra_create_kwargs = {
            "labels": {swarm.USER_LABEL: self.user.name, "ml-workshop.node": where.node}
        }
        self.environment = container.environment(
            npu_ids=where.npus,
            ssh_port=port,
            ssh_host=self.node_addr or self.ssh_host,
            extra_env=self.container_env,
            profile_env=profile.env,
            port_env={s.env_name: extra_ports[s.name] for s in profile.ports if s.name in extra_ports},
            language=self._language(),
        )
        self.npu_allocated = list(where.npus)
        self.ssh_port = port
        self.profile_slug = profile.slug

    async def start_object(self) -> None:
        """Wait for the task to run; a task the node rejected or that failed ends the start at
        once with the node's reason (SwarmSpawner waits on a rejected task until the timeout)."""
        pause = 0.2
        while True:
            task = await self.get_task()
            if task is None:
                raise self._refuse(messages.START_FAILED, detail=f"service {self.service_name} has no task")
            state = swarm.task_state(task)
            if state == "running":
                return
            if state not in WAITING:
                problem = task_problem(task)
                if (
                    "no such image" in problem.lower()
                    or "not found" in problem.lower()
                    and "image" in problem
                ):
                    raise self._refuse(
                        messages.IMAGE_MISSING_ON_NODE, image=self.image, node=self.node, detail=problem
                    )
                raise self._refuse(messages.START_FAILED, detail=f"on {self.node}: {problem}")
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 2.0)

    async def get_ip_and_port(self) -> tuple[str, int]:
        """The node's address and the Jupyter port published there (host mode)."""
        task = await self.get_task()
        if task and swarm.task_state(task) == "running":
            inspected = await self.docker("nodes")
            _, addrs = swarm.nodes_from_inspect(inspected)
            node, addr, port = swarm.task_endpoint(task, swarm.node_ids(inspected), addrs, self.port)
            self.node, self.node_addr, self.jupyter_host_port = node, addr, port
        if not self.node_addr or not self.jupyter_host_port:
            raise RuntimeError(f"service {self.service_name}: no node address or port")
        self._record_home()
        return self.node_addr, self.jupyter_host_port

    async def _container_state(self) -> str | dict[str, Any] | None:
        task = await self.get_task()
        if task is None:
            return None
        if swarm.task_state(task) == "running":
            return _RUNNING
        status = task.get("Status") or {}
        code = ((status.get("ContainerStatus") or {}).get("ExitCode")) or "unknown"
        return {"ExitCode": code, "Error": task_problem(task)}

    async def _exited(self, state: str | dict[str, Any] | None = None, detail: str = "") -> Any:
        st = state if isinstance(state, dict) else {}
        lines: list[str] = []
        try:
            raw = await self.docker(
                "service_logs", self.service_id, stdout=True, stderr=True, tail=200, is_tty=False
            )
            lines = (
                (b"".join(raw) if not isinstance(raw, bytes) else raw).decode("utf-8", "replace").splitlines()
            )
        except (docker_errors.APIError, TypeError):
            pass
        error = st.get("Error") or ""
        return self._refuse(
            messages.EXITED,
            code=st.get("ExitCode", "unknown"),
            log=messages.safe_log_lines(lines, limit=self.log_tail_lines),
            detail="; ".join(x for x in (f"Swarm: {error}" if error else "", detail) if x),
        )

    async def delete_forever(self) -> None:
        """The user is deleted: their ports and place are freed; the work on the node stays
        (collect-work.yml / the node's work root; the per-server mode moves it aside on the hub's
        host, which has none here)."""
        if self.name:
            return
        user = self.user.name
        with self.store.transaction() as st:
            st["placed"].pop(user, None)
            home = st["homes"].pop(user, None)
            st["ssh_ports"].pop(user, None)
            for table in st.get("ports", {}).values():
                table.pop(user, None)
        self.log.info("Deleted user %s: ports freed; their work stays on node %s", user, home)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.node:
            state.update(node=self.node, node_addr=self.node_addr, jupyter_port=self.jupyter_host_port)
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.node = state.get("node", "")
        self.node_addr = state.get("node_addr", "")
        self.jupyter_host_port = int(state.get("jupyter_port", 0) or 0)
