"""WorkshopSpawner: DockerSpawner plus NPU allocation, a stable SSH port and the student
container contract (work dir, read-only workshop content, limits, capabilities).

The logic lives in the pure modules `alloc` and `container`; this class only wires them
to DockerSpawner and persists allocations in a StateStore so they survive hub restarts.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import weakref
from collections.abc import Iterable
from typing import Any

from docker import errors as docker_errors
from dockerspawner import DockerSpawner
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.iostream import StreamClosedError
from traitlets import Bool, Dict, Float, Integer, List, Tuple, Unicode, default, observe

from . import alloc, container, i18n, messages, profiles, refusals
from .store import StateStore

_RUNNING = "running"  # _container_state() of a running container


class WorkshopSpawner(DockerSpawner):
    profiles = List(
        Dict(),
        config=True,
        help="hub_profiles: the environments offered on the start page (ml_workshop.profiles); "
        "[] = one, the configured image",
    )
    language = Unicode("en", config=True, help="hub_language: the language of the student's words")
    student_docker = Bool(
        False,
        config=True,
        help="hub_student_docker: profiles with docker: true may run their own Docker engine",
    )
    npu_policy = Unicode("shared", config=True, help="shared, exclusive or static")
    npu_ids = List(Integer(), config=True, help="NPU ids of this host")
    npu_per_user = Integer(1, config=True, help="NPUs per server under the exclusive policy")
    npu_static_map = Dict(config=True, help="{username: [ids]} under the static policy")
    npu_runtime = Unicode("devices", config=True, help="devices (device nodes + mounts) or ascend")
    npu_access = Dict(config=True, help="{npu_device_pattern, devices, mounts} from the ascend role")
    state_file = Unicode("/var/lib/jupyterhub/ml-workshop-state.json", config=True)
    work_root = Unicode("/srv/ml-workshop/student-work", config=True)
    content_dir = Unicode("", config=True, help="host dir mounted read-only at ~/workshop")
    instructor_content_writable = Bool(
        True, config=True, help="hub admins get the workshop content read-write (students: read-only)"
    )
    instructor_students_work = Unicode(
        "ro", config=True, help="hub admins see every student's work at ~/students: ro, rw or none"
    )
    work_uid = Integer(1000, config=True)
    work_gid = Integer(1000, config=True)
    ssh_port_range = Tuple(Integer(), Integer(), default_value=(22222, 22999), config=True)
    ssh_reserved_ports = List(Integer(), config=True)
    ssh_host = Unicode("localhost", config=True, help="host name students use for SSH")
    ssh_bind_ip = Unicode(
        "0.0.0.0", config=True, help="host address of the published SSH ports (hub_ssh_bind_ip)"
    )
    pids_limit = Integer(2048, config=True)
    shm_size = Unicode("2g", config=True)
    cap_add = List(Unicode(), default_value=list(container.DEFAULT_CAP_ADD), config=True)
    no_new_privileges = Bool(True, config=True)
    docker_init = Bool(
        None,
        allow_none=True,
        config=True,
        help="Run Docker's init as PID 1: True, False, or None (default) for True unless the "
        "image's ENTRYPOINT starts an init itself (the project's images run tini)",
    )
    ready_poll_max = Float(
        0.25,
        config=True,
        help="Longest pause (s) between two readiness checks of a starting server: the checks back "
        "off from 0.2 s to this, so a server that answers is noticed within it (issue 13; 0.25 s: "
        "measured, a burst of 20 starts keeps the hub API p95 under 500 ms)",
    )
    container_env = Dict(config=True, help="extra environment (cache proxy client settings)")
    start_margin = Float(
        2.0, config=True, help="seconds our own deadline keeps before JupyterHub's start_timeout"
    )
    log_tail_lines = Integer(8, config=True, help="container log lines shown when it exits at once")

    # users whose spawn is in progress in this hub process: their allocation is not stale
    _spawning: set[str] = set()
    # one allocation at a time in this hub process (per event loop): the running-container list,
    # the stale check and the write are one step (_allocate)
    _allocation_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
        weakref.WeakKeyDictionary()
    )

    @default("name_template")
    def _name_template(self) -> str:
        return container.CONTAINER_PREFIX + "-{username}"

    # --- profiles -----------------------------------------------------------------------------

    _parsed_profiles: list[profiles.Profile] | None = None

    def profile_list(self) -> list[profiles.Profile]:
        """The offered profiles, the default first; without hub_profiles, the one image this
        spawner is configured with (a pre_spawn_hook may change it)."""
        if not self.profiles:
            return profiles.single(self.image)
        if self._parsed_profiles is None:
            self._parsed_profiles = profiles.parse(
                self.profiles, self.ssh_port_range, self.ssh_reserved_ports, self.student_docker
            )
        return self._parsed_profiles

    @observe("profiles")
    def _profiles_changed(self, change: dict[str, Any]) -> None:
        self._parsed_profiles = None

    @default("options_form")
    def _default_options_form(self) -> Any:
        return WorkshopSpawner.profile_form

    @default("options_from_form")
    def _default_options_from_form(self) -> Any:
        return profiles.options_from_form

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        # the options (the profile, nothing else) are applied and checked by start(), whose
        # refusals carry the student's words; this only tells JupyterHub they are handled
        return lambda spawner, user_options: None

    @staticmethod
    async def profile_form(spawner: WorkshopSpawner) -> str:
        """The start page's choice of environment ("" with one profile: JupyterHub starts at once).
        Profiles whose image is not on this host are shown greyed out and cannot be picked."""
        offered = spawner.profile_list()
        if len(offered) <= 1:
            return ""
        note = i18n.page_text(spawner._language())["profile_missing"]
        try:
            tags = await spawner.available_images()
        except Exception:  # the daemon does not answer: offer everything, the start explains
            spawner.log.warning("Cannot list the images for the profile form", exc_info=True)
            tags = None
        if tags is None:
            tags = [p.image for p in offered]
        chosen = (spawner.user_options or {}).get("profile", "")
        return profiles.options_form(
            offered, tags, chosen=chosen if isinstance(chosen, str) else "", missing_note=note
        )

    async def available_images(self) -> list[str] | None:
        """The image references a server can start with (the start page greys out the others);
        None: not known (everything is offered)."""
        found = await self.docker("images")
        return [t for img in found or [] for t in (img.get("RepoTags") or [])]

    def _forget_user_options(self) -> None:
        """JupyterHub saves a start's options before the start and reuses them for later starts
        without options: refused ones would refuse every such start. Put back the profile of the
        last start (the spawner's state, kept across hub restarts) or nothing."""
        known = {p.slug for p in self.profile_list()}
        good = {"profile": self.profile_slug} if self.profile_slug in known else {}
        self.user_options = dict(good)
        orm = getattr(self, "orm_spawner", None)
        if orm is not None and self.db is not None:
            orm.user_options = dict(good)
            self.db.commit()

    def _choose_profile(self) -> profiles.Profile:
        return profiles.choose(self.profile_list(), (self.user_options or {}).get("profile"))

    @property
    def store(self) -> StateStore:
        return StateStore(self.state_file)

    async def _running_containers(self) -> list[dict[str, Any]]:
        return await self.docker("containers", filters={"label": container.LABEL_USER, "status": "running"})

    def _allocation_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._allocation_locks.get(loop)
        if lock is None:
            lock = self._allocation_locks[loop] = asyncio.Lock()
        return lock

    async def _prepare_work_dir(self) -> None:
        """The student's work directory exists, owned by the image's user, before the start."""
        self._ensure_work_dir()

    def _ensure_work_dir(self) -> str:
        path = container.work_dir(self.work_root, self.escaped_name)
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o750)
            os.chown(path, self.work_uid, self.work_gid)
        return path

    async def _allocate(self, profile: profiles.Profile | None = None) -> tuple[list[int], int]:
        """NPUs and the SSH port for this start, serialised with every other start of this hub.

        Under one lock: who is starting (taken BEFORE the container list, so a start that ends
        while the list is read is seen in one or the other), the running containers, the release
        of stale allocations, the choice and the write. A damaged state file is rebuilt from the
        running containers' labels (store.StateStore.transaction)."""
        user = self.user.name
        async with self._allocation_lock():
            spawning = set(self._spawning)
            found = await self._running_containers()
            running = {(c.get("Labels") or {}).get(container.LABEL_USER) for c in found}
            return self._allocate_locked(user, running | spawning, found, profile or self.profile_list()[0])

    def _allocate_locked(
        self, user: str, live: set[str], found: list[dict[str, Any]], profile: profiles.Profile
    ) -> tuple[list[int], int]:
        """NPUs (none for a profile with `npus: none`) and the SSH port; the profile's own ports,
        stable per student like the SSH port, go to self.profile_ports ({name: host port})."""

        def rebuild() -> dict[str, dict[str, Any]]:
            return container.state_from_labels(found, record_npus=self.npu_policy == "exclusive")

        with self.store.transaction(rebuild=rebuild) as st:
            npus = st["npus"]
            # allocations of servers that are gone (crash, docker restart) are released here
            for other in list(npus):
                if other != user and other not in live:
                    del npus[other]
            ids: list[int] = []
            if profile.takes_npus:
                ids = alloc.allocate_npus(
                    self.npu_policy, self.npu_ids, user, npus, self.npu_per_user, self.npu_static_map
                )
            if self.npu_policy == "exclusive":
                if ids:
                    npus[user] = ids
                else:
                    npus.pop(user, None)
            port, extra = self._allocate_ports(st, user, profile)
        self.profile_ports = extra
        return ids, port

    def _allocate_ports(
        self, st: dict[str, Any], user: str, profile: profiles.Profile
    ) -> tuple[int, dict[str, int]]:
        """The student's stable SSH port and the profile's own ports ({name: host port}), taken
        in the state `st` (inside its transaction)."""
        lo, hi = self.ssh_port_range
        port = alloc.allocate_port(user, st["ssh_ports"], lo, hi, self.ssh_reserved_ports)
        st["ssh_ports"][user] = port
        extra: dict[str, int] = {}
        for spec in profile.ports:
            table = st.setdefault("ports", {}).setdefault(spec.name, {})
            try:
                extra[spec.name] = alloc.allocate_port(user, table, *spec.range, self.ssh_reserved_ports)
            except alloc.AllocationError as e:
                raise alloc.AllocationError(
                    f"No free {spec.name} port left in {spec.range[0]}-{spec.range[1]} (hub_profiles)",
                    messages.PROFILE_PORTS_FULL,
                    port=spec.label,
                ) from e
            table[user] = extra[spec.name]
        return port, extra

    def _student_volumes(self) -> dict[str, dict[str, str]]:
        """The work directory, the workshop content and, for an instructor, the students' work
        (container.volumes with this hub's settings)."""
        return container.volumes(
            self.work_root,
            self.escaped_name,
            self.content_dir,
            instructor=bool(getattr(self.user, "admin", False)),
            students_work=self.instructor_students_work,
            content_writable=self.instructor_content_writable,
        )

    def _release(self) -> None:
        with self.store.transaction() as st:
            st["npus"].pop(self.user.name, None)

    async def _image_config(self) -> dict[str, Any] | None:
        """The image's Config; None when the image is not on this host; {} when Docker cannot say
        (DockerSpawner's start then reports the error itself)."""
        try:
            info = await self.docker("inspect_image", self.image)
        except docker_errors.APIError as e:
            return None if refusals.is_image_missing(e) else {}
        return (info or {}).get("Config") or {}

    def _docker_init_for(self, config: dict[str, Any] | None) -> bool:
        """docker_init, or (None) whether the image lacks its own init (container.image_runs_init)."""
        if self.docker_init is not None:
            return bool(self.docker_init)
        return not config or not container.image_runs_init(config)

    async def _use_docker_init(self) -> bool:
        """_docker_init_for the image: an image that cannot be inspected gets Docker's init."""
        if self.docker_init is not None:
            return bool(self.docker_init)
        return self._docker_init_for(await self._image_config())

    def apply_allocation(
        self,
        ids: list[int],
        port: int,
        *,
        init: bool = True,
        profile: profiles.Profile | None = None,
        extra_ports: dict[str, int] | None = None,
    ) -> None:
        """Set DockerSpawner's settings for this start (pure builders from `container`)."""
        profile = profile or self.profile_list()[0]
        extra_ports = dict(extra_ports if extra_ports is not None else self.profile_ports)
        published = {
            spec.container_port: extra_ports[spec.name] for spec in profile.ports if spec.name in extra_ports
        }
        vols = self._student_volumes()
        if self.npu_runtime != "ascend":
            vols.update(container.npu_binds(ids, self.npu_access))
        docker_engine = profile.docker and self.student_docker
        if docker_engine:
            vols.update(container.docker_engine_volumes(self.escaped_name))
        # DockerSpawner str.formats volumes, extra_host_config and extra_create_kwargs: each is
        # escaped (format_escape) so that a `{` in any of them reaches Docker as it is.
        self.volumes = container.format_escape(container.check_no_docker_socket(vols))
        self.extra_host_config = container.format_escape(
            container.host_config(
                npu_ids=ids,
                npu_access=self.npu_access,
                npu_runtime=self.npu_runtime,
                ssh_port=port,
                ssh_bind_ip=self.ssh_bind_ip,
                pids_limit=self.pids_limit,
                shm_size=self.shm_size,
                cap_add=self.cap_add,
                no_new_privileges=self.no_new_privileges,
                init=init,
                extra_ports=published,
                docker_engine=docker_engine,
            )
        )
        self.extra_create_kwargs = {
            "hostname": container.format_escape(container.hostname(self.escaped_name)),
            "ports": {f"{p}/tcp": {} for p in [22, *published]},
            "labels": container.format_escape(
                container.label_values(
                    self.user.name,
                    ids,
                    port,
                    profile=profile.slug,
                    ports={s.name: extra_ports[s.name] for s in profile.ports if s.name in extra_ports},
                )
            ),
        }
        self.environment = container.environment(
            npu_ids=ids,
            ssh_port=port,
            ssh_host=self.ssh_host,
            extra_env=self.container_env,
            profile_env=profile.env,
            port_env={s.env_name: extra_ports[s.name] for s in profile.ports if s.name in extra_ports},
            language=self._language(),
        )
        if docker_engine:
            self.environment["MLW_DOCKER"] = "yes"  # the image's start script starts dockerd
        self.npu_allocated = ids
        self.ssh_port = port
        self.profile_slug = profile.slug

    async def start(self) -> tuple[str, int]:
        """Allocate, start the container, and return once the server answers HTTP.

        Every way this can end badly ends in a refusals.StartRefused carrying the student's
        words (messages.py), logged with the user name and the reason. Waiting for the server
        here rather than in JupyterHub is what tells a container that exits at once (its last
        log lines are shown) from a slow one, and explains a timeout: both end before
        JupyterHub's own start_timeout fires."""
        user = self.user.name
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(1.0, self.start_timeout - self.start_margin)
        self._spawning.add(user)
        try:
            try:
                return await self._start(deadline)
            except (refusals.StartRefused, web.HTTPError):
                raise
            except Exception as e:
                self.log.exception("Unexpected error starting %s's server", user)
                raise self._refuse(
                    refusals.reason_of_docker_error(e), detail=repr(e), image=self.image
                ) from e
        except refusals.StartRefused as e:
            self.log.warning(
                "Start of %s's server refused [%s]: %s%s",
                user,
                e.mlw_reason,
                e.jupyterhub_message,
                f" ({e.mlw_detail})" if e.mlw_detail else "",
            )
            raise
        finally:
            self._spawning.discard(user)

    async def _start(self, deadline: float) -> tuple[str, int]:
        user = self.user.name
        try:
            container.safe_name(self.escaped_name)
        except ValueError as e:
            raise self._refuse(messages.BAD_NAME, detail=str(e), name=user) from e
        try:
            profile = self._choose_profile()
        except profiles.ProfileRefused as e:
            self._forget_user_options()
            raise self._refuse(e.reason, detail=str(e), **e.params) from e
        self.image = profile.image
        if self._configured_default_url is None:
            self._configured_default_url = self.default_url
        self.default_url = profile.default_url or self._configured_default_url
        try:
            ids, port = await self._allocate(profile)
        except alloc.AllocationError as e:
            raise self._refuse(e.reason, detail=str(e), **e.params) from e
        try:
            # after the allocation, so a student without a free NPU hears that first (it is what
            # they can wait for); the allocation is released below when the image is missing
            config = await self._image_config()
            if config is None and self.pull_policy.lower() in ("never", "skip"):
                raise self._refuse(
                    messages.IMAGE_MISSING,
                    image=self.image,
                    detail=f"profile {profile.slug}: image not on this host",
                )
            await self._prepare_work_dir()
            self.apply_allocation(ids, port, init=self._docker_init_for(config), profile=profile)
            self.log.info(
                "Starting %s (profile %s) with NPUs [%s], SSH port %s%s",
                user,
                profile.slug,
                alloc.format_id_list(ids),
                port,
                "".join(f", {n} port {p}" for n, p in sorted(self.profile_ports.items())),
            )
            ip_port = await self._start_container(deadline)
            await self._wait_until_answering(ip_port, deadline)
            return ip_port
        except BaseException:
            if self.npu_policy == "exclusive":
                self._release()
            raise

    async def _start_container(self, deadline: float) -> tuple[str, int]:
        """DockerSpawner's start (image check, create, start) within our deadline."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(super().start(), max(0.1, deadline - loop.time()))
        except web.HTTPError:
            raise
        except TimeoutError as e:
            raise self._refuse(
                messages.START_TIMEOUT,
                seconds=self.start_timeout,
                detail="the container was not created and started in time",
            ) from e
        except Exception as e:
            reason = refusals.reason_of_docker_error(e)
            if reason == messages.START_FAILED and self.container_id:
                # started, then gone before its address could be read: it exited at once
                state = await self._container_state()
                if state is not _RUNNING:
                    raise await self._exited(state, detail=repr(e)) from e
            raise self._refuse(reason, detail=repr(e), image=self.image) from e

    # --- telling the student why --------------------------------------------------------------

    def _language(self) -> str:
        """The language of the student's words (messages.CATALOGS): hub_language."""
        return self.language if self.language in messages.CATALOGS else messages.DEFAULT_LANGUAGE

    def _refuse(
        self, reason: str, *, log: Iterable[str] = (), detail: str = "", **params: object
    ) -> refusals.StartRefused:
        base = self.hub.base_url if self.hub is not None else "/hub/"
        retry = url_path_join(base, "spawn", self.user.escaped_name, self.name or "")
        return refusals.StartRefused(
            reason, language=self._language(), log=log, detail=detail, retry_url=retry, **params
        )

    async def _container_state(self) -> str | dict[str, Any] | None:
        """_RUNNING, None (gone) or Docker's State dict of a container that is not running."""
        try:
            info = await self.docker("inspect_container", self.container_id)
        except docker_errors.NotFound:
            return None
        state = info.get("State") or {}
        return _RUNNING if state.get("Running") else state

    async def _exited(
        self, state: str | dict[str, Any] | None = None, detail: str = ""
    ) -> refusals.StartRefused:
        """The refusal for a container that stopped on its own, with its safe last log lines."""
        st = state if isinstance(state, dict) else {}
        code = st.get("ExitCode", "unknown")
        try:
            raw = await self.docker("logs", self.container_id, stdout=True, stderr=True, tail=200)
            lines = raw.decode("utf-8", "replace").splitlines()
        except docker_errors.APIError:  # removed already: nothing to show
            lines = []
        error = st.get("Error") or ""
        return self._refuse(
            messages.EXITED,
            code=code,
            log=messages.safe_log_lines(lines, limit=self.log_tail_lines),
            detail="; ".join(x for x in (f"Docker: {error}" if error else "", detail) if x),
        )

    async def _answers(self, url: str) -> bool:
        try:
            response = await AsyncHTTPClient().fetch(
                url, follow_redirects=False, raise_error=False, connect_timeout=1, request_timeout=2
            )
        except (OSError, HTTPClientError, StreamClosedError):
            return False
        return response.code != 599  # any HTTP status means the server is up

    async def _wait_until_answering(self, ip_port: tuple[str, int], deadline: float) -> None:
        """Wait for any HTTP answer at the server's /api (what JupyterHub waits for next),
        up to http_timeout, watching the container: it may exit instead."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        end = min(deadline, started + self.http_timeout)
        ip, port = ip_port
        base_url = self.server.base_url if self.server is not None else "/"
        url = f"http://{ip}:{port}{url_path_join(base_url, 'api')}"
        pause = 0.2
        while True:
            state = await self._container_state()
            if state is not _RUNNING:
                raise await self._exited(state)
            if ip and await self._answers(url):
                return
            if loop.time() >= end:
                raise self._refuse(
                    messages.START_TIMEOUT, seconds=round(end - started), detail=f"no answer at {url}"
                )
            await asyncio.sleep(min(pause, max(0.0, end - loop.time())))
            pause = min(pause * 1.5, self.ready_poll_max)

    async def poll(self) -> int | None:
        """None while the container runs, else its exit status. A server found gone (its
        container exited or was removed, the daemon or the host restarted) releases its
        exclusive NPUs at once: JupyterHub's startup check marks such servers stopped without
        calling stop()."""
        status = await super().poll()
        if status is not None and self.npu_policy == "exclusive" and self.user.name not in self._spawning:
            self._release()
        return status

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            if self.npu_policy == "exclusive":
                self._release()

    async def delete_forever(self) -> None:
        """The user is deleted (hub admin page, DELETE /hub/api/users/NAME): their work moves to
        `<work_root>/.deleted/<name>-<UTC time>` and their SSH port and NPUs are freed, so a new
        account with the same name starts clean. JupyterHub calls this once per server, after
        stopping it; named servers have nothing of their own here."""
        if self.name:
            return
        user = self.user.name
        try:
            work = container.work_dir(self.work_root, self.escaped_name)
        except ValueError:
            work = ""
        if work and os.path.lexists(work):
            graveyard = os.path.join(self.work_root, ".deleted")
            os.makedirs(graveyard, mode=0o700, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            dest = base = os.path.join(graveyard, f"{self.escaped_name}-{stamp}")
            n = 1
            while os.path.lexists(dest):
                dest, n = f"{base}-{n}", n + 1
            shutil.move(work, dest)
            self.log.info("Deleted user %s: work archived to %s", user, dest)
        with self.store.transaction() as st:
            npus = st["npus"].pop(user, None)
            port = st["ssh_ports"].pop(user, None)
            others = {name: t.pop(user) for name, t in st.get("ports", {}).items() if user in t}
        self.log.info("Deleted user %s: SSH port %s, ports %s and NPUs %s freed", user, port, others, npus)

    npu_allocated = List(Integer())
    ssh_port = Integer(0)
    profile_ports = Dict()  # {port name: host port} of this start's profile
    profile_slug = Unicode("")
    _configured_default_url: str | None = None

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.object_id:
            state["npus"] = list(self.npu_allocated)
            state["ssh_port"] = self.ssh_port
            state["profile_ports"] = dict(self.profile_ports)
        if self.profile_slug:
            # kept while the server is stopped too (clear_state leaves it): the last good choice
            # that _forget_user_options puts back, also in a new spawner object or after a restart
            state["profile"] = self.profile_slug
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.npu_allocated = state.get("npus", [])
        self.ssh_port = state.get("ssh_port", 0)
        self.profile_slug = state.get("profile", "")
        self.profile_ports = state.get("profile_ports", {})

    def clear_state(self) -> None:
        super().clear_state()
        self.npu_allocated = []
