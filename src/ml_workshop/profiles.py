"""Profiles: the environments a student picks on the start page (ML Workshop, HCIE Lab, OpenClaw
Showcase, or whatever the operator lists in `hub_profiles`).

Pure: no JupyterHub, no Docker. A profile is an image plus what the spawner does differently
for it: whether it takes NPUs under the hub's policy, the extra container ports it publishes on a
stable per-student host port (OpenClaw's gateway, like the SSH port), its environment and its
default URL. The hub role's preflight calls `profile_problems` (filter hub_profile_problems), the
hub's configuration `parse`, the spawner `choose`, `options_form` and `options_from_form`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import messages

NPU_RULES = ("policy", "none")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_PORT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What the spawner sets itself: a profile's env may not change it.
_RESERVED_ENV = re.compile(r"^(JUPYTERHUB_|JPY_|MLW_SSH_|MLW_PORT_|ASCEND_VISIBLE_DEVICES$|MEM_|CPU_)")
_KEYS = {
    "slug",
    "display_name",
    "description",
    "image",
    "npus",
    "ports",
    "env",
    "default_url",
    "default",
    "docker",
}
_PORT_KEYS = {"name", "container_port", "range", "label", "scheme"}
# Container ports the student image uses itself (sshd, the notebook server).
_TAKEN_CONTAINER_PORTS = {22, 8888}


class ProfileRefused(Exception):
    """A start asked for a profile that cannot be given; `reason`/`params` pick the student's words."""

    def __init__(self, message: str, reason: str, **params: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.params = params


@dataclass(frozen=True)
class PortSpec:
    """A container port published on a stable per-student host port from `range`."""

    name: str  # e.g. "openclaw": the state file key, label suffix and MLW_PORT_OPENCLAW
    container_port: int
    range: tuple[int, int]
    label: str = ""  # what the connection page calls it
    scheme: str = ""  # the URL scheme shown with it ("ws", "http"); "" = address only

    @property
    def env_name(self) -> str:
        return port_env_name(self.name)


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    image: str
    description: str = ""
    npus: str = "policy"  # policy: NPUs as the hub's policy gives them; none: no NPU
    ports: tuple[PortSpec, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    default_url: str = ""
    docker: bool = False  # its own Docker engine in the container (needs hub_student_docker)

    @property
    def takes_npus(self) -> bool:
        return self.npus == "policy"


def port_env_name(name: str) -> str:
    """The variable carrying a profile port's host port into the container: MLW_PORT_<NAME>."""
    return "MLW_PORT_" + name.upper()


def normalise_image(ref: str) -> str:
    """`name` and `name:latest` are the same image; a digest reference stays as it is."""
    ref = ref.strip()
    if "@" in ref:
        return ref
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last else f"{ref}:latest"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_int(v: Any) -> Any:
    if isinstance(v, str) and v.strip().isdigit():
        return int(v.strip())
    return v


def _port_problems(where: str, raw: Any) -> list[str]:
    if not isinstance(raw, Mapping):
        return [f"{where} must be a mapping with name, container_port and range"]
    out = []
    unknown = sorted(set(raw) - _PORT_KEYS)
    if unknown:
        out.append(f"{where} has unknown keys {unknown} (known: {sorted(_PORT_KEYS)})")
    if not isinstance(raw.get("name"), str) or not _PORT_NAME.match(raw.get("name", "")):
        out.append(f"{where}.name must match {_PORT_NAME.pattern}, not {raw.get('name')!r}")
    cp = _as_int(raw.get("container_port"))
    if not _is_int(cp) or not 1 <= cp <= 65535 or cp in _TAKEN_CONTAINER_PORTS:
        out.append(
            f"{where}.container_port must be a port 1-65535 other than "
            f"{sorted(_TAKEN_CONTAINER_PORTS)}, not {raw.get('container_port')!r}"
        )
    rng = raw.get("range")
    if (
        not isinstance(rng, Sequence)
        or isinstance(rng, str)
        or len(rng) != 2
        or not all(_is_int(_as_int(p)) for p in rng)
        or not 1024 <= _as_int(rng[0]) <= _as_int(rng[1]) <= 65535
    ):
        out.append(f"{where}.range must be [first, last] host ports within 1024-65535, not {rng!r}")
    if raw.get("scheme", "") not in ("", "ws", "wss", "http", "https"):
        out.append(f"{where}.scheme must be one of ws, wss, http, https or empty, not {raw.get('scheme')!r}")
    return out


def profile_problems(
    raw: Any,
    ssh_port_range: Sequence[int] = (),
    reserved_ports: Iterable[int] = (),
    student_docker: bool = False,
) -> list[str]:
    """Every problem of a `hub_profiles` value, each naming the variable; [] when usable.

    Port ranges of different profile ports must not overlap each other or the SSH ports
    (hub_ssh_port_range); ports in use on the host (hub_ports_in_use, e.g. the shared OpenClaw
    service's 18789) are skipped when ports are given out, and a range made only of them is refused."""
    if raw in (None, [], ()):
        return []
    if isinstance(raw, Mapping):
        return [
            "hub_profiles must be a list of profiles ({slug, display_name, image, ...}), not a mapping "
            "of names to images (the old form): see roles/hub/README.md, Profiles"
        ]
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        return [f"hub_profiles must be a list of profiles, not {type(raw).__name__}"]
    out: list[str] = []
    slugs: list[str] = []
    ranges: list[tuple[str, int, int]] = []
    if len(ssh_port_range) == 2 and all(_is_int(_as_int(p)) for p in ssh_port_range):
        ranges.append(("hub_ssh_port_range", _as_int(ssh_port_range[0]), _as_int(ssh_port_range[1])))
    reserved = {_as_int(p) for p in reserved_ports}
    defaults = 0
    port_names: dict[str, tuple[int, int, int]] = {}
    for n, p in enumerate(raw):
        where = f"hub_profiles[{n}]"
        if not isinstance(p, Mapping):
            out.append(f"{where} must be a mapping, not {type(p).__name__}")
            continue
        unknown = sorted(set(p) - _KEYS)
        if unknown:
            out.append(f"{where} has unknown keys {unknown} (known: {sorted(_KEYS)})")
        slug = p.get("slug")
        if not isinstance(slug, str) or not _SLUG.match(slug):
            out.append(f"{where}.slug must match {_SLUG.pattern}, not {slug!r}")
        elif slug in slugs:
            out.append(f"{where}.slug {slug!r} is used by another profile")
        else:
            slugs.append(slug)
            where = f"hub_profiles[{n}] ({slug})"
        for key in ("display_name", "image"):
            if not isinstance(p.get(key), str) or not p.get(key, "").strip():
                out.append(f"{where}.{key} must be a non-empty string")
        if not isinstance(p.get("description", ""), str):
            out.append(f"{where}.description must be a string")
        if p.get("npus", "policy") not in NPU_RULES:
            out.append(f"{where}.npus must be one of {', '.join(NPU_RULES)}, not {p.get('npus')!r}")
        url = p.get("default_url", "")
        if not isinstance(url, str) or (url and not url.startswith("/")) or "//" in str(url):
            out.append(f"{where}.default_url must be empty or a path such as /lab, not {url!r}")
        if p.get("default", False) not in (True, False):
            out.append(f"{where}.default must be true or false")
        if p.get("docker", False) not in (True, False):
            out.append(f"{where}.docker must be true or false")
        elif p.get("docker") is True and not student_docker:
            out.append(
                f"{where}.docker: true gives its students their own Docker engine, which makes them root "
                "on this host; set hub_student_docker: true to allow it (a trusted class only)"
            )
        defaults += p.get("default") is True
        env = p.get("env", {})
        if not isinstance(env, Mapping):
            out.append(f"{where}.env must be a mapping of variable names to values")
        else:
            for k in env:
                if not isinstance(k, str) or not _ENV_NAME.match(k) or _RESERVED_ENV.match(k):
                    out.append(f"{where}.env: {k!r} is not a variable a profile may set")
        ports = p.get("ports", [])
        if not isinstance(ports, Sequence) or isinstance(ports, str):
            out.append(f"{where}.ports must be a list")
            continue
        cports: set[int] = set()
        for i, port in enumerate(ports):
            pwhere = f"{where}.ports[{i}]"
            problems = _port_problems(pwhere, port)
            out.extend(problems)
            if problems:
                continue
            name, cp = port["name"], _as_int(port["container_port"])
            lo, hi = (_as_int(x) for x in port["range"])
            if cp in cports:
                out.append(f"{pwhere}: container port {cp} is published twice in this profile")
            cports.add(cp)
            if name in port_names:
                # the same port name in two profiles: one allocation per student, same range
                if port_names[name] != (cp, lo, hi):
                    out.append(
                        f"{pwhere}: the port {name!r} is defined differently in another profile "
                        "(one name, one container port and range)"
                    )
                continue
            port_names[name] = (cp, lo, hi)
            for other, olo, ohi in ranges:
                if lo <= ohi and olo <= hi:
                    out.append(f"{pwhere}.range {lo}-{hi} overlaps {other} {olo}-{ohi}")
            busy = {r for r in reserved if _is_int(r) and lo <= r <= hi}
            if len(busy) == hi - lo + 1:
                out.append(f"{pwhere}.range {lo}-{hi} has only ports in use on the host: {sorted(busy)}")
            ranges.append((pwhere + ".range", lo, hi))
    if defaults > 1:
        out.append("hub_profiles: more than one profile has default: true")
    return out


def parse(
    raw: Any,
    ssh_port_range: Sequence[int] = (),
    reserved_ports: Iterable[int] = (),
    student_docker: bool = False,
) -> list[Profile]:
    """The profiles of a checked `hub_profiles` value (ValueError listing every problem)."""
    problems = profile_problems(raw, ssh_port_range, reserved_ports, student_docker)
    if problems:
        raise ValueError("; ".join(problems))
    out = []
    for p in raw or []:
        ports = tuple(
            PortSpec(
                name=x["name"],
                container_port=int(_as_int(x["container_port"])),
                range=(int(_as_int(x["range"][0])), int(_as_int(x["range"][1]))),
                label=str(x.get("label") or x["name"]),
                scheme=str(x.get("scheme", "")),
            )
            for x in p.get("ports", [])
        )
        out.append(
            Profile(
                slug=p["slug"],
                display_name=p["display_name"].strip(),
                image=p["image"].strip(),
                description=p.get("description", ""),
                npus=p.get("npus", "policy"),
                ports=ports,
                env={k: str(v) for k, v in (p.get("env") or {}).items()},
                default_url=p.get("default_url", ""),
                docker=p.get("docker") is True,
            )
        )
    # the default first: what a start without a choice (REST API, no form) gets
    default = next((i for i, p in enumerate(raw or []) if p.get("default") is True), 0)
    if out:
        out.insert(0, out.pop(default))
    return out


def single(image: str) -> list[Profile]:
    """The one profile of a hub without `hub_profiles`: hub_image under the hub's NPU policy."""
    return [Profile(slug="default", display_name="Default", image=image)]


def all_ports(profiles: Iterable[Profile]) -> dict[str, PortSpec]:
    """Every profile port by name (a name means the same port in every profile)."""
    out: dict[str, PortSpec] = {}
    for p in profiles:
        for port in p.ports:
            out.setdefault(port.name, port)
    return out


def choose(profiles: Sequence[Profile], requested: Any) -> Profile:
    """The profile a start gets: the requested slug, or the default (first) when none was asked.
    An unknown or malformed request is refused (never silently replaced by the default)."""
    if not profiles:
        raise ValueError("no profiles")
    if requested in (None, ""):
        return profiles[0]
    for p in profiles:
        if isinstance(requested, str) and p.slug == requested:
            return p
    shown = requested if isinstance(requested, str) else type(requested).__name__
    raise ProfileRefused(
        f"unknown profile {shown!r}; offered: {', '.join(p.slug for p in profiles)}",
        messages.PROFILE_UNKNOWN,
        profile=shown[:40],
        offered=", ".join(p.display_name for p in profiles),
    )


def options_from_form(formdata: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """user_options from the start page's form: the chosen profile's slug, nothing else."""
    values = formdata.get("profile") or [""]
    value = values[0] if isinstance(values[0], str) else ""
    return {"profile": value.strip()[:64]} if value.strip() else {}


def options_form(
    profiles: Sequence[Profile], available: Iterable[str], chosen: str = "", missing_note: str = ""
) -> str:
    """The start page's choice (radio buttons, HTML-escaped), or "" when there is nothing to choose
    (one profile): JupyterHub then starts at once. A profile whose image is not on the host is
    shown but cannot be picked; the first available one is preselected (or `chosen`)."""
    if len(profiles) <= 1:
        return ""
    have = {normalise_image(i) for i in available}
    usable = [p for p in profiles if normalise_image(p.image) in have]
    pick = next((p.slug for p in usable if p.slug == chosen), usable[0].slug if usable else "")
    note = missing_note or "not installed on this server"
    rows = []
    for p in profiles:
        ok = p in usable
        attrs = " checked" if p.slug == pick else ""
        attrs += "" if ok else " disabled"
        desc = html.escape(p.description)
        rows.append(
            f'<div class="radio mlw-profile{"" if ok else " text-muted"}" data-profile="{html.escape(p.slug)}">'
            f'<label><input type="radio" name="profile" value="{html.escape(p.slug)}"{attrs}> '
            f"<strong>{html.escape(p.display_name)}</strong>"
            + (f" &mdash; {desc}" if desc else "")
            + ("" if ok else f" <em>({html.escape(note)}: {html.escape(p.image)})</em>")
            + "</label></div>"
        )
    return '<div id="mlw-profiles">' + "".join(rows) + "</div>"
