"""Pure builders for a student container's Docker settings (no Docker calls here)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .alloc import format_id_list

CONTAINER_PREFIX = "ml-workshop-user"
LABEL_USER = "ml-workshop.user"
LABEL_NPUS = "ml-workshop.npus"
LABEL_SSH_PORT = "ml-workshop.ssh-port"
LABEL_PROFILE = "ml-workshop.profile"
LABEL_PORT_PREFIX = "ml-workshop.port."  # + a profile port's name: its host port
STUDENT_HOME = "/home/student"
# What sshd (privilege separation, login as `student`) and the NPU driver (DCMI needs
# CAP_DAC_OVERRIDE, docs/ascend.md#container-access) need once every capability has been dropped.
DEFAULT_CAP_ADD = (
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETUID",
    "SETGID",
    "KILL",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "AUDIT_WRITE",
)

# A profile with its own Docker engine (hub_student_docker, profile docker: true) runs dockerd
# inside the student's container, which needs what Docker's --privileged gives, short of the host
# kernel's modules, clock and boot: with CAP_SYS_ADMIN, seccomp and AppArmor off and the host's
# cgroups writable, such a student is root on the host (the README's threat model says so).
DOCKER_ENGINE_CAPS = (
    *DEFAULT_CAP_ADD,
    "DAC_READ_SEARCH",
    "FSETID",
    "IPC_LOCK",
    "LEASE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BROADCAST",
    "NET_RAW",
    "SETFCAP",
    "SETPCAP",
    "SYS_ADMIN",
    "SYS_NICE",
    "SYS_PTRACE",
)
DOCKER_VOLUME_PREFIX = "ml-workshop-docker"  # + the user name: the engine's /var/lib/docker

_SAFE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def safe_name(escaped_username: str) -> str:
    """Reject names that could escape a directory (the spawner passes DockerSpawner's escaped name)."""
    if not _SAFE.match(escaped_username or "") or ".." in escaped_username:
        raise ValueError(f"unsafe user name for a path or container: {escaped_username!r}")
    return escaped_username


def container_name(escaped_username: str, prefix: str = CONTAINER_PREFIX) -> str:
    return f"{prefix}-{safe_name(escaped_username)}"


def hostname(escaped_username: str, prefix: str = CONTAINER_PREFIX) -> str:
    """The container's host name: the same at every start of one student's server (Docker's
    default is the container id, new each time). Tools that record their owner as (host, pid)
    in the work directory, such as OpenClaw's gateway lease, then recognise their own dead
    owner after a restart instead of waiting for the lease to expire."""
    return f"{prefix}-{safe_name(escaped_username)}"[:63].rstrip("-.")


def work_dir(root: str, escaped_username: str) -> str:
    return os.path.join(root, safe_name(escaped_username))


STUDENTS_WORK_MODES = ("ro", "rw", "none")


def volumes(
    work_root: str,
    escaped_username: str,
    content_dir: str,
    *,
    instructor: bool = False,
    students_work: str = "ro",
    content_writable: bool = True,
) -> dict[str, dict[str, str]]:
    """DockerSpawner `volumes`: the user's own work dir rw and the workshop content ro.
    Nothing of another user is mounted for a student.

    An instructor (a hub admin) also gets the content read-write (`content_writable`: lessons
    edited during the class) and every student's work at ~/students (`students_work`: ro, rw or
    none), to look at a notebook when asked for help."""
    if students_work not in STUDENTS_WORK_MODES:
        raise ValueError(f"students_work must be one of {STUDENTS_WORK_MODES}, not {students_work!r}")
    vols = {
        work_dir(work_root, escaped_username): {"bind": f"{STUDENT_HOME}/work", "mode": "rw"},
    }
    if content_dir:
        mode = "rw" if instructor and content_writable else "ro"
        vols[content_dir] = {"bind": f"{STUDENT_HOME}/workshop", "mode": mode}
    if instructor and students_work != "none":
        vols[work_root.rstrip("/") or "/"] = {"bind": f"{STUDENT_HOME}/students", "mode": students_work}
    return vols


def docker_engine_volumes(escaped_username: str) -> dict[str, dict[str, str]]:
    """The mounts of a container that runs its own Docker engine: a named volume per student for
    /var/lib/docker (its images survive restarts; overlayfs needs a real directory below it) and
    the host's cgroups read-write (dockerd creates its containers' cgroups there)."""
    return {
        f"{DOCKER_VOLUME_PREFIX}-{safe_name(escaped_username)}": {"bind": "/var/lib/docker", "mode": "rw"},
        "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
    }


def npu_devices(npu_ids: Iterable[int], access: Mapping[str, Any]) -> list[str]:
    """Device strings (host:container:rwm) for the NPUs plus the shared management devices."""
    if not npu_ids:
        return []
    pattern = access.get("npu_device_pattern", "/dev/davinci{id}")
    devs = [pattern.format(id=i) for i in sorted(npu_ids)]
    devs += list(access.get("devices", []))
    return [f"{d}:{d}:rwm" if ":" not in d else d for d in devs]


def npu_binds(npu_ids: Iterable[int], access: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Read-only driver mounts ("src:dst:ro" strings) as docker-py `binds` entries."""
    if not npu_ids:
        return {}
    out = {}
    for m in access.get("mounts", []):
        parts = m.split(":")
        src, dst = parts[0], parts[1] if len(parts) > 1 else parts[0]
        mode = parts[2] if len(parts) > 2 else "ro"
        out[src] = {"bind": dst, "mode": mode}
    return out


# init processes an image may run as PID 1 itself (its ENTRYPOINT's first word, any directory)
IMAGE_INITS = frozenset({"tini", "tini-static", "dumb-init", "docker-init", "catatonit"})


def image_runs_init(image_config: Mapping[str, Any] | None) -> bool:
    """True when the image's ENTRYPOINT starts an init (tini, dumb-init, ...) as PID 1.

    `image_config` is `docker image inspect`'s `Config` (Entrypoint: list, string or None).
    Docker's own init would then run that init as its child, which is one init too many
    (tini warns it is not PID 1 and, without -s, does not reap)."""
    entry = (image_config or {}).get("Entrypoint")
    if isinstance(entry, str):
        entry = entry.split()
    if not entry or not isinstance(entry, list) or not isinstance(entry[0], str):
        return False
    return entry[0].rsplit("/", 1)[-1] in IMAGE_INITS


def host_config(
    *,
    npu_ids: Iterable[int],
    npu_access: Mapping[str, Any],
    npu_runtime: str,
    ssh_port: int | str,
    ssh_bind_ip: str = "0.0.0.0",
    pids_limit: int | str = 2048,
    shm_size: str = "2g",
    cap_add: Iterable[str] = DEFAULT_CAP_ADD,
    no_new_privileges: bool = True,
    init: bool = True,
    extra_ports: Mapping[int, int] | None = None,
    docker_engine: bool = False,
) -> dict[str, Any]:
    """extra_host_config for DockerSpawner: NPU devices (or the Ascend runtime), the published
    SSH port and the profile's ports ({container port: host port}, on the same address), limits
    and capabilities. Never privileged, never the Docker socket."""
    bindings: dict[int, tuple[str, int]] = {22: (ssh_bind_ip, int(ssh_port))}
    for cport, hport in (extra_ports or {}).items():
        bindings[int(cport)] = (ssh_bind_ip, int(hport))
    cfg: dict[str, Any] = {
        "cap_drop": ["ALL"],
        "cap_add": sorted(set(cap_add)),
        "pids_limit": int(pids_limit),
        "shm_size": shm_size,
        "port_bindings": bindings,
        "privileged": False,
        # one init as PID 1 (reaps sshd's children, forwards SIGTERM): Docker's, unless the
        # image runs its own (spawner.docker_init, image_runs_init)
        "init": bool(init),
        # Never Docker's auto-remove: dockerd deletes auto-remove containers when it restarts,
        # even with live-restore, so every student's server would vanish with an unattended
        # Docker upgrade. The spawner removes the container itself when it stops a server
        # (DockerSpawner.remove) and removes a leftover one before the next start.
        "auto_remove": False,
    }
    if docker_engine:
        # its own dockerd (hub_student_docker): see DOCKER_ENGINE_CAPS. Still never privileged,
        # never the host's Docker socket.
        cfg["cap_add"] = sorted(set(cap_add) | set(DOCKER_ENGINE_CAPS))
        cfg["security_opt"] = ["seccomp=unconfined", "apparmor=unconfined"]
        cfg["cgroupns"] = "host"
    elif no_new_privileges:
        cfg["security_opt"] = ["no-new-privileges:true"]
    if npu_runtime == "ascend":
        if npu_ids:
            cfg["runtime"] = "ascend"
    else:
        devs = npu_devices(npu_ids, npu_access)
        if devs:
            cfg["devices"] = devs
    return cfg


def environment(
    *,
    npu_ids: Iterable[int],
    ssh_port: int,
    ssh_host: str,
    extra_env: Mapping[str, str] | None = None,
    profile_env: Mapping[str, str] | None = None,
    port_env: Mapping[str, int] | None = None,
    language: str = "",
) -> dict[str, str]:
    """The container's environment: the cache settings (extra_env), the profile's own variables,
    then what the spawner decides (NPUs, SSH port and host, the profile ports' host ports as
    MLW_PORT_<NAME>), which neither can change."""
    env = dict(extra_env or {})
    env.update(profile_env or {})
    env.update({k: str(v) for k, v in (port_env or {}).items()})
    if language:
        env["MLW_LANGUAGE"] = language  # JupyterLab's default language (the image's start script)
    env.update(
        {
            "ASCEND_VISIBLE_DEVICES": format_id_list(npu_ids),
            "MLW_SSH_PORT": str(ssh_port),
            "MLW_SSH_HOST": ssh_host,
        }
    )
    return env


def format_escape(obj: Any) -> Any:
    """`obj` with every `{` and `}` of its strings (dict keys too) doubled.

    DockerSpawner passes extra_create_kwargs, extra_host_config (_render_templates) and the
    volume paths (format_volume_name) through str.format with its template namespace, so a
    user named `{prefix}` would get the label value `jupyter`, and `x{prefix.foo}` would make the
    start fail (AttributeError, which _render_templates does not catch). Escaped, format gives
    the value back unchanged."""
    if isinstance(obj, str):
        return obj.replace("{", "{{").replace("}", "}}")
    if isinstance(obj, dict):
        return {format_escape(k): format_escape(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(format_escape(v) for v in obj)
    return obj


def label_values(
    username: str,
    npu_ids: Iterable[int],
    ssh_port: int,
    profile: str = "",
    ports: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """A student's server's labels as Docker stores them: the user, the NPUs, the SSH port, the
    profile and the profile's ports ({name: host port}), so a damaged state file is rebuilt with
    them (state_from_labels). Unescaped: what a Swarm service spec takes as it is; the spawner
    escapes them for DockerSpawner's str.format (format_escape) like the rest of its kwargs."""
    out = {
        LABEL_USER: username,
        LABEL_NPUS: format_id_list(npu_ids),
        LABEL_SSH_PORT: str(ssh_port),
    }
    if profile:
        out[LABEL_PROFILE] = profile
    for name, port in (ports or {}).items():
        out[LABEL_PORT_PREFIX + name] = str(port)
    return out


def state_from_labels(
    containers: Iterable[Mapping[str, Any]], record_npus: bool = True
) -> dict[str, dict[str, Any]]:
    """The state file's content rebuilt from running containers (docker-py `containers()` entries
    with their Labels): each user's SSH port, profile ports and, with record_npus (the exclusive
    policy), NPUs.
    Labels that cannot be read are skipped; an NPU or port already taken is not given twice."""
    npus: dict[str, list[int]] = {}
    ports: dict[str, int] = {}
    named: dict[str, dict[str, int]] = {}
    taken_ports: set[int] = set()
    taken_ids: set[int] = set()
    for c in containers:
        lab = c.get("Labels") or {}
        user = lab.get(LABEL_USER)
        if not user:
            continue
        try:
            port = int(lab.get(LABEL_SSH_PORT, ""))
        except ValueError:
            port = 0
        if 0 < port <= 65535 and port not in taken_ports:
            ports[user] = port
            taken_ports.add(port)
        for key, value in sorted(lab.items()):
            if not key.startswith(LABEL_PORT_PREFIX) or not str(value).isdigit():
                continue
            hport = int(value)
            if 0 < hport <= 65535 and hport not in taken_ports:
                named.setdefault(key[len(LABEL_PORT_PREFIX) :], {})[user] = hport
                taken_ports.add(hport)
        if record_npus:
            try:
                ids = [int(i) for i in str(lab.get(LABEL_NPUS, "")).split(",") if i.strip()]
            except ValueError:
                ids = []
            if ids and not taken_ids & set(ids):
                npus[user] = sorted(ids)
                taken_ids.update(ids)
    return {"npus": npus, "ssh_ports": ports, "ports": named}


def check_no_docker_socket(vols: dict[str, Any]) -> dict[str, Any]:
    """Refuse any mount of the Docker socket (it equals root on the host)."""
    for src in list(vols):
        if "docker.sock" in str(src):
            raise ValueError(f"refusing to mount the Docker socket ({src}) into a student container")
    return vols


def vscode_snippet(host_alias: str, host: str, port: int, user: str = "root") -> str:
    """An ~/.ssh/config entry for VS Code Remote-SSH."""
    return f"Host {host_alias}\n    HostName {host}\n    Port {port}\n    User {user}\n"


def connection_details(
    username: str,
    state: Mapping[str, Any],
    ssh_host: str,
    alias_prefix: str = "ml-workshop",
    ssh_user: str = "root",
    port_labels: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any] | None:
    """Pure: what the page shows. None when the student has no SSH port yet.

    `port_labels` ({port name: (label, URL scheme)}, from the hub's profiles) names the student's
    profile ports (e.g. their OpenClaw gateway); ports of names no profile has any more are left out.

    The SSH user is root, as in the original ml-workshop: the student image generates root's
    password at the first start (container log, ~/work/.ml-workshop/root-password) and reads
    keys from ~/work/.ssh/authorized_keys."""
    port = state.get("ssh_ports", {}).get(username)
    if not port:
        return None
    extra = []
    for name, (label, scheme) in sorted((port_labels or {}).items()):
        hport = state.get("ports", {}).get(name, {}).get(username)
        if hport:
            extra.append(
                {
                    "name": name,
                    "label": label,
                    "port": hport,
                    "address": f"{scheme}://{ssh_host}:{hport}" if scheme else f"{ssh_host}:{hport}",
                }
            )
    return {
        "ports": extra,
        "host": ssh_host,
        "port": port,
        "user": ssh_user,
        "npus": state.get("npus", {}).get(username)
        or (state.get("placed", {}).get(username) or {}).get("npus"),
        "command": f"ssh -p {port} {ssh_user}@{ssh_host}",
        "vscode": vscode_snippet(f"{alias_prefix}-{username}", ssh_host, port, ssh_user),
    }
