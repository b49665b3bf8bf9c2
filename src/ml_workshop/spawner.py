"""WorkshopSpawner: DockerSpawner plus NPU allocation, a stable SSH port and the student
container contract (work dir, read-only workshop content, limits, capabilities).

The logic lives in the pure modules `alloc` and `container`; this class only wires them
to DockerSpawner and persists allocations in a StateStore so they survive hub restarts.
"""

from __future__ import annotations

import os

from dockerspawner import DockerSpawner
from tornado import web
from traitlets import Bool, Dict, Integer, List, Tuple, Unicode, default

from . import alloc, container
from .store import StateStore


class WorkshopSpawner(DockerSpawner):
    npu_policy = Unicode("shared", config=True, help="shared, exclusive or static")
    npu_ids = List(Integer(), config=True, help="NPU ids of this host")
    npu_per_user = Integer(1, config=True, help="NPUs per server under the exclusive policy")
    npu_static_map = Dict(config=True, help="{username: [ids]} under the static policy")
    npu_runtime = Unicode("devices", config=True, help="devices (device nodes + mounts) or ascend")
    npu_access = Dict(config=True, help="{npu_device_pattern, devices, mounts} from the ascend role")
    state_file = Unicode("/var/lib/jupyterhub/ml-workshop-state.json", config=True)
    work_root = Unicode("/srv/ml-workshop/student-work", config=True)
    content_dir = Unicode("", config=True, help="host dir mounted read-only at ~/workshop")
    work_uid = Integer(1000, config=True)
    work_gid = Integer(1000, config=True)
    ssh_port_range = Tuple(Integer(), Integer(), default_value=(22222, 22999), config=True)
    ssh_reserved_ports = List(Integer(), config=True)
    ssh_host = Unicode("localhost", config=True, help="host name students use for SSH")
    ssh_bind_ip = Unicode("0.0.0.0", config=True)
    pids_limit = Integer(1024, config=True)
    shm_size = Unicode("1g", config=True)
    cap_add = List(Unicode(), default_value=list(container.DEFAULT_CAP_ADD), config=True)
    no_new_privileges = Bool(True, config=True)
    docker_init = Bool(True, config=True, help="run docker-init as PID 1")
    container_env = Dict(config=True, help="extra environment (cache proxy client settings)")

    # users whose spawn is in progress in this hub process: their allocation is not stale
    _spawning: set = set()

    @default("name_template")
    def _name_template(self):
        return container.CONTAINER_PREFIX + "-{username}"

    @property
    def store(self):
        return StateStore(self.state_file)

    async def _running_users(self):
        found = await self.docker(
            "containers", filters={"label": container.LABEL_USER, "status": "running"}
        )
        return {c["Labels"].get(container.LABEL_USER) for c in found}

    def _ensure_work_dir(self):
        path = container.work_dir(self.work_root, self.escaped_name)
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o750)
            os.chown(path, self.work_uid, self.work_gid)
        return path

    async def _allocate(self):
        user = self.user.name
        running = await self._running_users() if self.npu_policy == "exclusive" else set()
        with self.store.transaction() as st:
            npus = st["npus"]
            # allocations of servers that are gone (crash, docker restart) are released here
            for other in list(npus):
                if other != user and other not in running and other not in self._spawning:
                    del npus[other]
            ids = alloc.allocate_npus(
                self.npu_policy, self.npu_ids, user, npus, self.npu_per_user, self.npu_static_map
            )
            if self.npu_policy == "exclusive":
                npus[user] = ids
            lo, hi = self.ssh_port_range
            port = alloc.allocate_port(user, st["ssh_ports"], lo, hi, self.ssh_reserved_ports)
            st["ssh_ports"][user] = port
        return ids, port

    def _release(self):
        with self.store.transaction() as st:
            st["npus"].pop(self.user.name, None)

    def apply_allocation(self, ids, port):
        """Set DockerSpawner's settings for this start (pure builders from `container`)."""
        vols = container.volumes(self.work_root, self.escaped_name, self.content_dir)
        if self.npu_runtime != "ascend":
            vols.update(container.npu_binds(ids, self.npu_access))
        self.volumes = container.check_no_docker_socket(vols)
        self.extra_host_config = container.host_config(
            npu_ids=ids, npu_access=self.npu_access, npu_runtime=self.npu_runtime,
            ssh_port=port, ssh_bind_ip=self.ssh_bind_ip, pids_limit=self.pids_limit,
            shm_size=self.shm_size, cap_add=self.cap_add, no_new_privileges=self.no_new_privileges,
            init=self.docker_init,
        )
        self.extra_create_kwargs = {
            "ports": {"22/tcp": {}},
            "labels": container.labels(self.user.name, ids, port),
        }
        self.environment = container.environment(
            npu_ids=ids, ssh_port=port, ssh_host=self.ssh_host, extra_env=self.container_env
        )
        self.npu_allocated = ids
        self.ssh_port = port

    async def start(self):
        user = self.user.name
        self._spawning.add(user)
        try:
            try:
                ids, port = await self._allocate()
            except alloc.AllocationError as e:
                self.log.warning("Refusing to start %s: %s", user, e)
                raise web.HTTPError(409, str(e), reason=str(e)) from e
            try:
                self._ensure_work_dir()
                self.apply_allocation(ids, port)
                self.log.info("Starting %s with NPUs [%s], SSH port %s", user,
                              alloc.format_id_list(ids), port)
                return await super().start()
            except BaseException:
                if self.npu_policy == "exclusive":
                    self._release()
                raise
        finally:
            self._spawning.discard(user)

    async def poll(self):
        """None while the container runs, else its exit status. A server found gone (its
        container exited or was removed, the daemon or the host restarted) releases its
        exclusive NPUs at once: JupyterHub's startup check marks such servers stopped without
        calling stop()."""
        status = await super().poll()
        if status is not None and self.npu_policy == "exclusive" and self.user.name not in self._spawning:
            self._release()
        return status

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:
            if self.npu_policy == "exclusive":
                self._release()

    npu_allocated = List(Integer())
    ssh_port = Integer(0)

    def get_state(self):
        state = super().get_state()
        if self.object_id:
            state["npus"] = list(self.npu_allocated)
            state["ssh_port"] = self.ssh_port
        return state

    def load_state(self, state):
        super().load_state(state)
        self.npu_allocated = state.get("npus", [])
        self.ssh_port = state.get("ssh_port", 0)

    def clear_state(self):
        super().clear_state()
        self.npu_allocated = []
