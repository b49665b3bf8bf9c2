#!/usr/bin/env python3
"""Spawn phase breakdown for the ml-workshop hub: where the seconds of a student's server start go.

One start (-n 1, the default) or a burst of N simultaneous starts (-n N), through the REST API
with the ml-workshop-api service token, each start timed milestone by milestone on this host's
wall clock, from these sources:

  request           POST /hub/api/users/NAME/server sent (this script)
  allocated         hub journal, WorkshopSpawner._start(): "Starting NAME with NPUs [..], SSH port N"
                    (logged right after _allocate() took the NPUs and the SSH port under its lock)
  created, started  `docker events` create / start of the container ml-workshop-user-NAME
  entrypoint_done   `docker logs --timestamps`: "[mlw-start] sshd started ..." (mlw-user-start's
                    last line before it execs jupyterhub-singleuser)
  server_process    the first line of the server process after that (Jupyter's log lines)
  server_listening  "Jupyter Server X is running at:" (ServerApp.start_app, just before its loop)
  spawner_returned  hub journal: "User NAME took X seconds to start" (WorkshopSpawner.start()
                    returned: its own readiness wait, _wait_until_answering, saw HTTP at /api)
  route_added       GET http://127.0.0.1:8001/api/routes (proxy token) lists /user/NAME
  hub_ready         GET /hub/api/users/NAME (one user) or /hub/api/users?state=active (burst),
                    every --poll s: servers[""].ready; or the POST's own 201 (JupyterHub answers
                    201 only once the server is ready), whichever comes first
  lab_page          GET /user/NAME/lab through the public proxy (service token: its role has
                    access:servers) answers 200 with JupyterLab's HTML

Also: CPU seconds per start (the container's cgroup when the hub reports it ready), the CPU bound
N x CPU-s/start / cores for a burst next to p95 request->ready and 1.5 x the bound, the hub API
latency during the starts, the CPU of the hub, proxy and Docker units, and failures with reasons.
--repeat K starts the same users K times (stopping in between): the first start of a new user
generates SSH host keys and a root password, so first and later starts are reported apart.

Stdlib only (Python 3.11). Run it as root on the hub host (see README.md in this directory):

  python3 phases.py [-n 1] [--repeat 1] [--url http://127.0.0.1:28000] [--json FILE] [--keep]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

# src/ml_workshop/container.py: WorkshopSpawner.name_template is CONTAINER_PREFIX + "-{username}"
# (DockerSpawner's escaped name: the same as the user name for [a-z0-9] names, which is why
# --prefix is restricted to those), and every student container carries the LABEL_USER label.
CONTAINER_PREFIX = "ml-workshop-user"
LABEL_USER = "ml-workshop.user"

# (key, where it comes from), in the order they happen
MILESTONES: list[tuple[str, str]] = [
    ("request", "POST /hub/api/users/NAME/server sent"),
    ("allocated", "hub journal: 'Starting NAME with NPUs [..], SSH port N'"),
    ("created", "docker events: create"),
    ("started", "docker events: start"),
    ("entrypoint_done", "docker logs: '[mlw-start] sshd started'"),
    ("server_process", "docker logs: first server line after the entrypoint's"),
    ("server_listening", "docker logs: 'Jupyter Server ... is running at:'"),
    ("spawner_returned", "hub journal: 'User NAME took X seconds to start'"),
    ("proxy_add_logged", "hub journal: 'Adding user NAME to proxy'"),
    ("route_added", "proxy API: /user/NAME in GET /api/routes"),
    ("hub_ready", "REST: servers[''].ready (or the POST's 201)"),
    ("lab_page", "GET /user/NAME/lab: 200 with JupyterLab's HTML"),
]

# (label, from, to): consecutive phases of one start
PHASES: list[tuple[str, str, str]] = [
    ("request -> NPU allocation done", "request", "allocated"),
    ("allocation -> container created", "allocated", "created"),
    ("created -> container started", "created", "started"),
    ("entrypoint: start -> sshd up", "started", "entrypoint_done"),
    ("exec -> first server output", "entrypoint_done", "server_process"),
    ("server start-up -> listening", "server_process", "server_listening"),
    ("listening -> spawner.start() returned", "server_listening", "spawner_returned"),
    ("spawner returned -> proxy route seen", "spawner_returned", "route_added"),
    ("route -> hub API says ready", "route_added", "hub_ready"),
    ("ready -> first JupyterLab page", "hub_ready", "lab_page"),
]

TOTALS: list[tuple[str, str, str]] = [
    ("request -> container started", "request", "started"),
    ("entrypoint until server process", "started", "server_process"),
    ("request -> server listening", "request", "server_listening"),
    ("request -> hub ready", "request", "hub_ready"),
    ("request -> first JupyterLab page", "request", "lab_page"),
]

# host units whose CPU time during a round is reported (cgroup v2 under system.slice)
HOST_UNITS = ["jupyterhub.service", "configurable-http-proxy.service", "docker.service", "containerd.service"]

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?$"
)

# --- pure logic: parsing ----------------------------------------------------------------------------


def parse_iso_ts(text: str) -> float:
    """Epoch seconds of an ISO 8601 timestamp with any number of fraction digits (Docker's are
    nanoseconds) and Z, +HH:MM or +HHMM (journalctl's short-iso-precise); no zone means UTC."""
    m = _ISO_RE.match(text.strip())
    if not m:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}")
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    base = datetime(int(y), int(mo), int(d), int(hh), int(mi), int(ss), tzinfo=timezone.utc).timestamp()
    if frac:
        base += int(frac) / 10 ** len(frac)
    if tz and tz != "Z":
        digits = tz[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        base -= offset if tz[0] == "+" else -offset
    return base


def container_name(user: str) -> str:
    return f"{CONTAINER_PREFIX}-{user}"


def user_of_container(name: str) -> str:
    name = name.lstrip("/")
    prefix = CONTAINER_PREFIX + "-"
    return name[len(prefix) :] if name.startswith(prefix) else ""


@dataclass
class DockerEvent:
    time: float
    action: str
    id: str
    name: str
    user: str
    attributes: dict[str, str] = field(default_factory=dict)


def parse_docker_events(lines: Iterable[str]) -> list[DockerEvent]:
    """Container events from `docker events --format '{{json .}}'` lines (other lines skipped)."""
    out: list[DockerEvent] = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if not isinstance(ev, dict) or ev.get("Type", "container") != "container":
            continue
        actor = ev.get("Actor") or {}
        attrs = {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()}
        action = str(ev.get("Action") or ev.get("status") or "")
        if "timeNano" in ev:
            t = int(ev["timeNano"]) / 1e9
        else:
            t = float(ev.get("time", 0))
        name = attrs.get("name", "")
        user = attrs.get(LABEL_USER) or user_of_container(name)
        out.append(DockerEvent(t, action, str(actor.get("ID") or ev.get("id") or ""), name, user, attrs))
    return out


def container_milestones(events: Sequence[DockerEvent], user: str, since: float) -> dict[str, Any]:
    """created / started times, the container id, and (if it died) die time and exit code, for the
    first container of `user` created at or after `since` (a start's request time)."""
    mine = sorted((e for e in events if e.user == user and e.time >= since - 0.05), key=lambda e: e.time)
    out: dict[str, Any] = {}
    cid = ""
    for e in mine:
        if e.action == "create" and "created" not in out:
            out["created"], cid = e.time, e.id
            out["id"] = cid
        elif e.action == "start" and "started" not in out and (not cid or e.id == cid):
            out["started"] = e.time
            cid = cid or e.id
            out.setdefault("id", cid)
        elif e.action == "die" and "started" in out and e.id == cid and "died" not in out:
            out["died"] = e.time
            out["exit_code"] = e.attributes.get("exitCode", "")
    return out


_DLOG_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\S+)\s?(.*)$")


def parse_docker_log(text: str) -> list[tuple[float, str]]:
    """(epoch, line) of `docker logs --timestamps` output (stdout and stderr merged), in time order."""
    out = []
    for raw in text.splitlines():
        m = _DLOG_RE.match(raw)
        if not m:
            continue
        try:
            t = parse_iso_ts(m.group(1))
        except ValueError:
            continue
        out.append((t, _ANSI_RE.sub("", m.group(2)).rstrip("\r")))
    out.sort(key=lambda x: x[0])
    return out


ENTRYPOINT_DONE = "[mlw-start] sshd started"  # mlw-user-start's last line before `exec setpriv ... "$@"`
FIRST_START_MARK = "SSH root password (generated on the first start)"
LATER_START_MARK = "root password restored"
_RUNNING_RE = re.compile(r"Jupyter Server \S+ is running at")
_JUPYTER_LINE_RE = re.compile(r"^\[[DIWEC] \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_SERVER_WORDS = (
    "ServerApp",
    "SingleUserNotebookApp",
    "JupyterHubSingleUser",
    "jupyterhub-singleuser",
    "LabApp",
)


def log_milestones(lines: Sequence[tuple[float, str]]) -> dict[str, Any]:
    """From a container's timestamped log: entrypoint_done, server_process, server_listening
    (epochs) and first_start (True: root password generated; False: restored; absent: unknown).

    server_process is the first line after the entrypoint's "sshd started" that is not one of our
    own "[mlw-...]" lines (mlw-ssh-activity runs in the background); without that line, the first
    line in Jupyter's log format or naming the server app."""
    out: dict[str, Any] = {}
    for t, msg in lines:
        if FIRST_START_MARK in msg:
            out["first_start"] = True
        elif LATER_START_MARK in msg and msg.startswith("[mlw-start]"):
            out["first_start"] = False
        if msg.startswith(ENTRYPOINT_DONE):
            out.setdefault("entrypoint_done", t)
            continue
        if msg.startswith("[mlw-"):
            continue
        if "server_process" not in out and (
            "entrypoint_done" in out or _JUPYTER_LINE_RE.match(msg) or any(w in msg for w in _SERVER_WORDS)
        ):
            out["server_process"] = t
        if "server_listening" not in out and _RUNNING_RE.search(msg):
            out["server_listening"] = t
    return out


_JOURNAL_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\S+)\s+\S+\s+[^\s:\[]+(?:\[\d+\])?:\s?(.*)$")
_JH_PREFIX_RE = re.compile(r"^\[[DIWEC] \d{4}-\d{2}-\d{2} [\d:.,]+ [^\]]*\]\s?")


def parse_journal(text: str) -> list[tuple[float, str]]:
    """(epoch, message) of `journalctl -o short-iso-precise` lines, JupyterHub's own
    "[I 2026-11-29 02:14:23.789 JupyterHub base:1144] " prefix removed."""
    out = []
    for raw in text.splitlines():
        m = _JOURNAL_RE.match(_ANSI_RE.sub("", raw))
        if not m:
            continue
        try:
            t = parse_iso_ts(m.group(1))
        except ValueError:
            continue
        out.append((t, _JH_PREFIX_RE.sub("", m.group(2), count=1)))
    return out


# The wording of src/ml_workshop/spawner.py and of JupyterHub 5.5 (handlers/base.py, proxy.py, user.py)
_ALLOC_RE = re.compile(r"^Starting (?P<user>\S+) with NPUs \[(?P<npus>[^\]]*)\], SSH port (?P<port>\d+)")
_TOOK_RE = re.compile(r"^User (?P<user>\S+) took (?P<secs>[\d.]+) seconds to start")
_PROXY_RE = re.compile(r"^Adding user (?P<user>\S+) to proxy ")
_REFUSED_RE = re.compile(r"^Start of (?P<user>\S+?)'s server refused \[(?P<reason>[^\]]*)\]: (?P<msg>.*)")
_ERROR_RES = [
    re.compile(r"^Unexpected error starting (?P<user>\S+?)'s server"),
    re.compile(r"^Unhandled error starting (?P<user>\S+?)'s server: (?P<msg>.*)"),
    re.compile(r"^(?P<user>\S+?)'s server failed to start"),
    re.compile(r"^Failed to add (?P<user>\S+) to proxy"),
]


def journal_milestones(entries: Sequence[tuple[float, str]], user: str, since: float) -> dict[str, Any]:
    """allocated / spawner_returned / proxy_add_logged epochs, hub_took_s, npus, ssh_port and
    errors (hub's words) of `user`'s start requested at `since`."""
    out: dict[str, Any] = {}
    errors: list[str] = []
    for t, msg in entries:
        if t < since - 0.05:
            continue
        m = _ALLOC_RE.match(msg)
        if m and m["user"] == user and "allocated" not in out:
            out["allocated"], out["npus"], out["ssh_port"] = t, m["npus"], int(m["port"])
            continue
        m = _TOOK_RE.match(msg)
        if m and m["user"] == user and "spawner_returned" not in out:
            out["spawner_returned"], out["hub_took_s"] = t, float(m["secs"])
            continue
        m = _PROXY_RE.match(msg)
        if m and m["user"] == user and "proxy_add_logged" not in out:
            out["proxy_add_logged"] = t
            continue
        m = _REFUSED_RE.match(msg)
        if m and m["user"] == user:
            errors.append(f"refused [{m['reason']}]: {m['msg']}")
            continue
        for rx in _ERROR_RES:
            m = rx.match(msg)
            if m and m["user"] == user:
                errors.append(msg)
                break
    if errors:
        out["errors"] = errors
    return out


_ROUTE_RE = re.compile(r"(?:^|/)user/([^/]+)/?$")


def route_users(routes: dict[str, Any], users: Iterable[str]) -> set[str]:
    """Which of `users` have a /user/NAME route in configurable-http-proxy's GET /api/routes."""
    wanted = set(users)
    found = set()
    for key in routes:
        m = _ROUTE_RE.search(urllib.parse.unquote(key))
        if m and m.group(1) in wanted:
            found.add(m.group(1))
    return found


def server_state(model: dict[str, Any] | None) -> str:
    """The default server's state in a JupyterHub user model: ready, pending or stopped."""
    srv = ((model or {}).get("servers") or {}).get("")
    if not srv:
        return "stopped"
    return "ready" if srv.get("ready") else "pending"


def users_states(listing: Any, users: Iterable[str]) -> dict[str, str]:
    """States of `users` from GET /hub/api/users?state=active (a list, or a paginated
    {"items": [...]}): a user missing from the active list is "stopped"."""
    items = listing.get("items", []) if isinstance(listing, dict) else (listing or [])
    by_name = {m.get("name"): m for m in items if isinstance(m, dict)}
    return {u: server_state(by_name.get(u)) for u in users}


def is_lab_page(status: int, content_type: str, body: str) -> bool:
    """A 200 HTML page of JupyterLab (its page config script), not a hub or login page."""
    return status == 200 and "html" in content_type.lower() and "jupyter-config-data" in body


def cpu_seconds_from_cpu_stat(text: str) -> float | None:
    """cgroup v2 cpu.stat: usage_usec in seconds."""
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        if k == "usage_usec":
            return int(v) / 1e6
    return None


def cpu_seconds_from_cpuacct_usage(text: str) -> float | None:
    """cgroup v1 cpuacct.usage (nanoseconds) in seconds."""
    text = text.strip()
    return int(text) / 1e9 if text.isdigit() else None


def cpu_stat_candidates(container_id: str, proc_cgroup: str = "", root: str = "/sys/fs/cgroup") -> list[str]:
    """Files that may hold a container's CPU time, best first: its cgroup from /proc/PID/cgroup
    (v2 "0::/path", v1 "N:cpu,cpuacct:/path"; never the root), then the systemd and cgroupfs drivers' v2 paths,
    then their v1 paths."""
    out: list[str] = []
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if path.rstrip("/") == "":  # the root: the whole machine's CPU, never one container's
            continue
        if controllers == "":
            out.append(f"{root}{path.rstrip('/')}/cpu.stat")
        elif "cpuacct" in controllers.split(","):
            out.append(f"{root}/{controllers}{path.rstrip('/')}/cpuacct.usage")
    cid = container_id
    out += [
        f"{root}/system.slice/docker-{cid}.scope/cpu.stat",
        f"{root}/docker/{cid}/cpu.stat",
        f"{root}/cpuacct/docker/{cid}/cpuacct.usage",
        f"{root}/cpu,cpuacct/docker/{cid}/cpuacct.usage",
        f"{root}/cpuacct/system.slice/docker-{cid}.scope/cpuacct.usage",
        f"{root}/cpu,cpuacct/system.slice/docker-{cid}.scope/cpuacct.usage",
    ]
    return list(dict.fromkeys(out))


def cpu_seconds_from_file(path: str, text: str) -> float | None:
    if path.endswith("cpu.stat"):
        return cpu_seconds_from_cpu_stat(text)
    return cpu_seconds_from_cpuacct_usage(text)


# --- pure logic: numbers and the report -------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    """The p-th percentile as spawn_burst.py computes it (nearest rank, rounded index)."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * (len(s) - 1)))))
    return s[k]


def summarize(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "max": max(values),
        "mean": statistics.mean(values),
    }


def cpu_bound(n: int, cpu_per_start: float, cores: int) -> float:
    """The wall time N starts need at least when each burns cpu_per_start CPU-seconds on `cores`."""
    return n * cpu_per_start / max(1, cores)


@dataclass
class Start:
    """One server start: its milestones (epoch seconds, this host's clock) and what was found."""

    user: str
    round: int = 0
    new_user: bool = False
    container: str = ""
    container_id: str = ""
    ms: dict[str, float] = field(default_factory=dict)
    post_status: int | None = None
    post_returned: float | None = None
    ready_source: str = ""
    first_start: bool | None = None
    hub_took_s: float | None = None
    npus: str = ""
    ssh_port: int | None = None
    cpu_at_ready_s: float | None = None
    cpu_after_lab_s: float | None = None
    cpu_source: str = ""
    lab_attempts: int = 0
    lab_last: str = ""
    failure: str | None = None
    notes: list[str] = field(default_factory=list)


def is_first_start(s: Start) -> bool:
    """From the container log when it says; else: the first round of a user this run created."""
    if s.first_start is not None:
        return s.first_start
    return s.round == 0 and s.new_user


def interval_values(starts: Sequence[Start], a: str, b: str) -> list[float]:
    return [s.ms[b] - s.ms[a] for s in starts if a in s.ms and b in s.ms]


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None or v != v:  # None or nan
        return "-"
    return f"{v:.3f}{unit}"


def format_table(starts: Sequence[Start]) -> list[str]:
    """Phase rows then totals: n and the value (one start) or p50/p95/max, in seconds, plus when the
    phase ends counted from the request (p50)."""
    single = len(starts) == 1
    w = max(len(label) for label, _, _ in PHASES + TOTALS) + 2
    head = f"  {'phase':<{w}}{'n':>3}" + (
        f"{'value s':>10}" if single else f"{'p50 s':>9}{'p95 s':>9}{'max s':>9}"
    )
    lines = [head + f"{'ends at s':>11}"]

    def row(label: str, a: str, b: str, at: bool) -> str:
        vals = interval_values(starts, a, b)
        st = summarize(vals)
        cols = f"  {label:<{w}}{st['n']:>3}"
        if single:
            cols += f"{_fmt(vals[0] if vals else None):>10}"
        else:
            cols += "".join(f"{_fmt(st.get(k)):>9}" for k in ("p50", "p95", "max"))
        if at:
            ends = summarize(interval_values(starts, "request", b))
            cols += f"{_fmt(ends.get('p50')):>11}"
        return cols

    for label, a, b in PHASES:
        lines.append(row(label, a, b, True))
    lines.append("  totals")
    for label, a, b in TOTALS:
        lines.append(row(label, a, b, False))
    return lines


def format_report(
    starts: Sequence[Start],
    n: int,
    cores: int,
    api_latency_ms: Sequence[float] = (),
    host_cpu_s: dict[str, float] | None = None,
    notes: Sequence[str] = (),
    header: str = "",
) -> str:
    """The printed report: per group (first starts, later starts) the phase table, CPU per start,
    for a burst the CPU bound check; then API latency, host units' CPU, failures, notes."""
    out: list[str] = []
    failures = [s for s in starts if s.failure]
    ready = [s for s in starts if "hub_ready" in s.ms]
    rounds = len({s.round for s in starts})
    out.append(
        header
        or f"spawn phases: {n} user(s) at once x {rounds} round(s) = {len(starts)} start(s); "
        f"ready {len(ready)}, failures {len(failures)}; {cores} cores"
    )
    groups = [
        (
            "first starts of new users (SSH host keys and root password generated)",
            [s for s in starts if is_first_start(s)],
        ),
        ("later starts (keys and password restored)", [s for s in starts if not is_first_start(s)]),
    ]
    for title, group in groups:
        if not group:
            continue
        out.append("")
        out.append(f"{title}: {len(group)} start(s)")
        out += format_table(group)
        cpu = [s.cpu_at_ready_s for s in group if s.cpu_at_ready_s is not None]
        lab_cpu = [s.cpu_after_lab_s for s in group if s.cpu_after_lab_s is not None]
        if cpu:
            cs = summarize(cpu)
            srcs = sorted({s.cpu_source for s in group if s.cpu_source})
            out.append(
                f"  CPU s per start (container cgroup at ready): p50 {cs['p50']:.2f}  max {cs['max']:.2f}"
                f"  mean {cs['mean']:.2f}  [{', '.join(srcs)}]"
            )
        else:
            why = sorted({s.cpu_source for s in group if s.cpu_source}) or ["no start reached ready"]
            out.append(f"  CPU s per start: not measured ({'; '.join(why)})")
        if lab_cpu:
            out.append(
                f"  CPU s per start incl. the first JupyterLab page: mean {statistics.mean(lab_cpu):.2f}"
            )
        if n > 1:
            p95 = pct(interval_values(group, "request", "hub_ready"), 95)
            if cpu:
                per = statistics.mean(cpu)
                bound = cpu_bound(n, per, cores)
                verdict = "within" if p95 <= 1.5 * bound else "over"
                out.append(
                    f"  CPU bound: {n} x {per:.2f} CPU-s / {cores} cores = {bound:.2f} s;"
                    f"  1.5 x bound = {1.5 * bound:.2f} s;  p95 request -> ready = {_fmt(p95)} s ({verdict})"
                )
            else:
                out.append(f"  CPU bound: not computed;  p95 request -> ready = {_fmt(p95)} s")
            ok = [s for s in group if not s.failure]
            out.append(f"  all {len(group)} starts succeeded: {'yes' if len(ok) == len(group) else 'no'}")
    if api_latency_ms:
        a = summarize(api_latency_ms)
        out.append("")
        out.append(
            f"hub API latency during the starts ms (GET /hub/api/users/NAME, {a['n']} samples):"
            f" p50 {a['p50']:.1f}"
            f"  p95 {a['p95']:.1f}  max {a['max']:.1f}"
        )
    if host_cpu_s:
        parts = [f"{k.removesuffix('.service')} {v:.2f}" for k, v in host_cpu_s.items()]
        per = sum(host_cpu_s.values()) / max(1, len(starts))
        out.append(f"host units' CPU s during the starts: {', '.join(parts)}  (per start {per:.2f})")
    if failures:
        out.append("")
        out.append(f"failures ({len(failures)}):")
        for s in failures[:20]:
            out.append(f"  {s.user} (round {s.round + 1}): {s.failure[:300]}")
    missing: dict[str, list[str]] = {}
    for s in starts:
        for key, _ in MILESTONES:
            if key not in s.ms and not s.failure:
                missing.setdefault(key, []).append(s.user)
    if missing or notes:
        out.append("")
        out.append("not measured / notes:")
        src = dict(MILESTONES)
        for key, who in missing.items():
            out.append(f"  {key} ({src[key]}): missing for {len(who)} start(s), e.g. {who[0]}")
        for note in notes:
            out.append(f"  {note}")
    return "\n".join(out)


# --- I/O: hub, proxy, docker, journal, cgroups ------------------------------------------------------


class Http:
    def __init__(self, base: str, token: str, insecure: bool = False) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.ctx: ssl.SSLContext | None = None
        if insecure:
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method: str, path: str, timeout: float = 60) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.base + path, method=method, headers={"Authorization": "token " + self.token}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx) as r:
                body = r.read()
                return r.status, json.loads(body) if body else None
        except urllib.error.HTTPError as e:
            body = e.read()
            try:
                return e.code, json.loads(body)
            except ValueError:
                return e.code, body.decode(errors="replace")
        except (urllib.error.URLError, OSError) as e:
            return 0, repr(e)

    def page(self, path: str, timeout: float = 30) -> tuple[int, str, str, str]:
        """GET following redirects: (status, content type, body, final URL)."""
        req = urllib.request.Request(self.base + path, headers={"Authorization": "token " + self.token})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self.ctx) as r:
                body = r.read(4_000_000).decode("utf-8", "replace")
                return r.status, r.headers.get("Content-Type", ""), body, r.geturl()
        except urllib.error.HTTPError as e:
            try:
                body = e.read(4000).decode("utf-8", "replace")
            except (OSError, ValueError, AttributeError):
                body = ""
            ctype = e.headers.get("Content-Type", "") if e.headers else ""
            return e.code, ctype, body, str(e.filename or self.base + path)
        except (urllib.error.URLError, OSError) as e:
            return 0, "", repr(e), self.base + path


def run(cmd: Sequence[str], timeout: float = 60) -> tuple[int, str]:
    """A command's exit code and stdout+stderr (rc 127 when it cannot run)."""
    try:
        p = subprocess.run(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, repr(e)
    return p.returncode, p.stdout


class EventStream:
    """`docker events` from `since` on, read in a thread until stop()."""

    def __init__(self, since: float) -> None:
        self.lines: list[str] = []
        self.error = ""
        cmd = [
            "docker",
            "events",
            "--since",
            str(int(since)),
            "--filter",
            "type=container",
            "--filter",
            f"label={LABEL_USER}",
            "--format",
            "{{json .}}",
        ]
        try:
            self.proc: subprocess.Popen[str] | None = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        except OSError as e:
            self.proc, self.error = None, f"docker events could not run: {e!r}"
            return
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def stop(self) -> list[DockerEvent]:
        if self.proc is not None:
            self.proc.terminate()
            try:
                _, err = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
            self.thread.join(5)
            if not self.lines and err and err.strip():
                self.error = f"docker events: {err.strip()[:200]}"
        return parse_docker_events(self.lines)


def read_journal(unit: str, since: float) -> tuple[list[tuple[float, str]], str]:
    rc, out = run(
        ["journalctl", "-u", unit, "-o", "short-iso-precise", "--since", f"@{int(since)}", "--no-pager", "-q"]
    )
    if rc != 0:
        return [], f"journalctl -u {unit} failed (rc {rc}): {out.strip()[:200]}"
    return parse_journal(out), ""


def _docker_api_cpu(container_id: str, sock_path: str = "/var/run/docker.sock") -> float | None:
    """CPU seconds from the Docker API's one-shot stats (last resort when no cgroup file is found)."""

    class _Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(10)
            self.sock.connect(sock_path)

    try:
        conn = _Conn("localhost", timeout=10)
        conn.request("GET", f"/containers/{container_id}/stats?stream=false&one-shot=true")
        data = json.loads(conn.getresponse().read())
        conn.close()
        return int(data["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        return None


def container_cpu(name: str) -> tuple[float | None, str, str]:
    """(CPU seconds so far, source, container id) of a running container."""
    rc, out = run(["docker", "inspect", "-f", "{{.Id}} {{.State.Pid}}", name], timeout=30)
    if rc != 0 or len(out.split()) != 2:
        return None, f"docker inspect failed: {out.strip()[:100]}", ""
    cid, pid = out.split()
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            proc_cgroup = f.read()
    except OSError:
        proc_cgroup = ""
    for path in cpu_stat_candidates(cid, proc_cgroup):
        try:
            with open(path, encoding="utf-8") as f:
                v = cpu_seconds_from_file(path, f.read())
        except (OSError, ValueError):
            continue
        if v is not None:
            return v, path.replace(cid, "<id>"), cid
    v = _docker_api_cpu(cid)
    return v, ("docker API stats" if v is not None else "no cgroup file, no docker API stats"), cid


def unit_cpu_seconds(unit: str) -> float | None:
    try:
        with open(f"/sys/fs/cgroup/system.slice/{unit}/cpu.stat", encoding="utf-8") as f:
            v = cpu_seconds_from_cpu_stat(f.read())
        if v is not None:
            return v
    except (OSError, ValueError):
        pass
    rc, out = run(["systemctl", "show", "-p", "CPUUsageNSec", "--value", unit], timeout=10)
    out = out.strip()
    return int(out) / 1e9 if rc == 0 and out.isdigit() else None


def host_cpu_snapshot() -> dict[str, float]:
    snap = {}
    for unit in HOST_UNITS:
        v = unit_cpu_seconds(unit)
        if v is not None:
            snap[unit] = v
    return snap


# --- I/O: one round of starts -----------------------------------------------------------------------


@dataclass
class RoundResult:
    starts: list[Start]
    t0: float
    api_latency_ms: list[float]
    host_cpu_s: dict[str, float]
    notes: list[str]


def _short(body: Any) -> str:
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])[:300]
    return str(body)[:300]


def run_round(
    a: argparse.Namespace, hub: Http, proxy: Http | None, users: list[str], rnd: int, new_users: set[str]
) -> RoundResult:
    starts = {
        u: Start(user=u, round=rnd, new_user=u in new_users, container=container_name(u)) for u in users
    }
    lock = threading.Lock()
    done = {u: threading.Event() for u in users}
    stop = threading.Event()
    notes: list[str] = []
    api_lat: list[float] = []
    workers: list[threading.Thread] = []

    host_before = host_cpu_snapshot()
    t0 = time.time()
    events = EventStream(t0 - 1)
    if events.error:
        notes.append(events.error)

    def fail(u: str, why: str) -> None:
        with lock:
            s = starts[u]
            if s.failure is None and not done[u].is_set():
                s.failure = why
                done[u].set()

    def after_ready(u: str) -> None:
        s = starts[u]
        s.cpu_at_ready_s, s.cpu_source, s.container_id = container_cpu(s.container)
        deadline = time.monotonic() + a.lab_timeout
        while time.monotonic() < deadline:
            s.lab_attempts += 1
            status, ctype, body, url = hub.page(f"/user/{urllib.parse.quote(u)}/lab")
            if is_lab_page(status, ctype, body):
                s.ms["lab_page"] = time.time()
                break
            s.lab_last = f"HTTP {status} at {url}"
            time.sleep(0.1)
        else:
            s.failure = f"no JupyterLab page within {a.lab_timeout:g} s (last: {s.lab_last})"
        cpu, _, _ = container_cpu(s.container)
        s.cpu_after_lab_s = cpu
        done[u].set()

    def on_ready(u: str, t: float, source: str) -> None:
        with lock:
            s = starts[u]
            if s.failure or "hub_ready" in s.ms or done[u].is_set():
                return
            s.ms["hub_ready"], s.ready_source = t, source
        w = threading.Thread(target=after_ready, args=(u,), daemon=True)
        workers.append(w)
        w.start()

    def spawn(u: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        s = starts[u]
        s.ms["request"] = time.time()
        status, body = hub.call("POST", f"/hub/api/users/{u}/server", timeout=a.timeout)
        s.post_returned, s.post_status = time.time(), status
        if status == 201:  # JupyterHub answers 201 only when the server is ready
            on_ready(u, s.post_returned, "POST 201")
        elif status != 202:
            fail(u, f"HTTP {status}: {_short(body)}")

    def hub_poller() -> None:
        limit = 200  # JupyterHub's api_page_max_limit; name_filter is a substring match
        while not stop.is_set():
            t = time.monotonic()
            if len(users) == 1:
                st, body = hub.call("GET", f"/hub/api/users/{users[0]}")
                states = {users[0]: server_state(body)} if st == 200 else {}
            else:
                st, body = hub.call(
                    "GET", f"/hub/api/users?state=active&name_filter={a.prefix}&limit={limit}"
                )
                states = users_states(body, users) if st == 200 else {}
            if len(users) == 1:  # the same request as spawn_burst.py's sampler
                api_lat.append((time.monotonic() - t) * 1000)
            now = time.time()
            for u, state in states.items():
                s = starts[u]
                if "request" not in s.ms or done[u].is_set():
                    continue
                if state == "ready":
                    on_ready(u, now, "poll")
                elif state == "stopped" and s.post_status == 202:
                    fail(u, "server stopped while starting (see the hub journal)")
            stop.wait(a.poll)

    def api_sampler() -> None:  # a burst: like spawn_burst.py, GET one user every 0.2 s
        while not stop.is_set():
            t = time.monotonic()
            hub.call("GET", f"/hub/api/users/{users[0]}")
            api_lat.append((time.monotonic() - t) * 1000)
            stop.wait(0.2)

    def route_poller() -> None:
        assert proxy is not None
        warned = False
        while not stop.is_set():
            st, body = proxy.call("GET", "/api/routes", timeout=10)
            now = time.time()
            if st == 200 and isinstance(body, dict):
                for u in route_users(body, users):
                    s = starts[u]
                    if "request" in s.ms and "route_added" not in s.ms:
                        s.ms["route_added"] = now
            elif not warned:
                notes.append(f"proxy routes: HTTP {st}: {_short(body)}")
                warned = True
            stop.wait(a.poll)

    pollers = [threading.Thread(target=hub_poller, daemon=True)]
    if len(users) > 1:
        pollers.append(threading.Thread(target=api_sampler, daemon=True))
    if proxy is not None:
        pollers.append(threading.Thread(target=route_poller, daemon=True))
    for p in pollers:
        p.start()
    barrier = threading.Barrier(len(users))
    spawners = [threading.Thread(target=spawn, args=(u, barrier), daemon=True) for u in users]
    for w in spawners:
        w.start()
    deadline = time.monotonic() + a.timeout + a.lab_timeout
    for u in users:
        if not done[u].wait(max(0.0, deadline - time.monotonic())):
            late = "hub_ready" not in starts[u].ms
            fail(u, f"timeout: not ready within {a.timeout:g} s" if late else "timeout after ready")
    stop.set()
    for p in pollers + workers:
        p.join(30)
    host_after = host_cpu_snapshot()
    time.sleep(1.0)  # journald and docker events catch up
    docker_events = events.stop()
    if events.error:
        notes.append(events.error)
    journal, err = read_journal(a.unit, t0 - 1)
    if err:
        notes.append(err)

    for u in users:
        s = starts[u]
        since = s.ms.get("request", t0)
        cm = container_milestones(docker_events, u, since)
        for k in ("created", "started"):
            if k in cm:
                s.ms[k] = cm[k]
        s.container_id = s.container_id or cm.get("id", "")
        if "died" in cm and s.failure:
            s.failure += f"; the container exited (code {cm.get('exit_code', '?')})"
        rc, out = run(["docker", "logs", "--timestamps", s.container], timeout=60)
        if rc == 0:
            lm = log_milestones(parse_docker_log(out))
            for k in ("entrypoint_done", "server_process", "server_listening"):
                if k in lm:
                    s.ms[k] = lm[k]
            s.first_start = lm.get("first_start")
        else:
            s.notes.append(f"docker logs: {out.strip()[:200]}")
        jm = journal_milestones(journal, u, since)
        for k in ("allocated", "spawner_returned", "proxy_add_logged"):
            if k in jm:
                s.ms[k] = jm[k]
        s.hub_took_s, s.npus, s.ssh_port = jm.get("hub_took_s"), jm.get("npus", ""), jm.get("ssh_port")
        if jm.get("errors") and s.failure:
            s.failure += " | hub: " + " | ".join(jm["errors"])[:400]
    host = {k: host_after[k] - host_before[k] for k in host_after if k in host_before}
    return RoundResult([starts[u] for u in users], t0, api_lat, host, notes)


def stop_servers(hub: Http, proxy: Http | None, users: list[str], timeout: float = 180) -> None:
    """Stop the users' servers and wait until they are gone from the hub, the proxy and Docker."""
    for u in users:
        hub.call("DELETE", f"/hub/api/users/{u}/server")
    deadline = time.monotonic() + timeout
    for u in users:
        while time.monotonic() < deadline:
            st, info = hub.call("GET", f"/hub/api/users/{u}")
            if st != 200 or server_state(info) == "stopped":
                break
            time.sleep(0.3)
    while proxy is not None and time.monotonic() < deadline:
        st, body = proxy.call("GET", "/api/routes", timeout=10)
        if st != 200 or not route_users(body if isinstance(body, dict) else {}, users):
            break
        time.sleep(0.3)
    for u in users:  # remove=True: DockerSpawner removes the container; the next start creates it anew
        while (
            time.monotonic() < deadline and run(["docker", "inspect", container_name(u)], timeout=30)[0] == 0
        ):
            time.sleep(0.3)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("-n", type=int, default=1, help="users starting at once (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="rounds: start, measure, stop; K times")
    ap.add_argument("--url", default="http://127.0.0.1:28000", help="the public proxy")
    ap.add_argument("--token-file", default="/etc/jupyterhub/secrets/api_token")
    ap.add_argument("--proxy-api", default="http://127.0.0.1:8001")
    ap.add_argument("--proxy-token-file", default="/etc/jupyterhub/secrets/proxy_token")
    ap.add_argument("--unit", default="jupyterhub", help="the hub's systemd unit (journal)")
    ap.add_argument("--prefix", default="phase", help="benchmark user names: PREFIX000, ... ([a-z][a-z0-9]*)")
    ap.add_argument("--poll", type=float, default=0.1, help="seconds between hub / proxy polls")
    ap.add_argument("--timeout", type=float, default=300, help="seconds a start may take to be ready")
    ap.add_argument("--lab-timeout", type=float, default=60, help="seconds from ready to the lab page")
    ap.add_argument("--insecure", action="store_true", help="do not verify TLS of --url")
    ap.add_argument("--json", metavar="FILE", help="write the raw per-start timestamps here")
    ap.add_argument("--keep", action="store_true", help="leave the last round's servers and the users")
    a = ap.parse_args(argv)
    if not re.fullmatch(r"[a-z][a-z0-9]*", a.prefix):
        ap.error("--prefix: lower-case letters and digits (the container name must equal the user name)")
    if not 1 <= a.n <= 150 or a.repeat < 1:
        ap.error("-n: 1 to 150 (one page of GET /hub/api/users); --repeat: at least 1")

    hub = Http(a.url, _read(a.token_file), a.insecure)
    notes: list[str] = []
    try:
        proxy: Http | None = Http(a.proxy_api, _read(a.proxy_token_file))
    except OSError as e:
        proxy = None
        notes.append(f"proxy routes not polled: {e}")
    cores = os.cpu_count() or 1
    users = [f"{a.prefix}{i:03d}" for i in range(a.n)]
    new_users: set[str] = set()
    for u in users:
        st, body = hub.call("POST", f"/hub/api/users/{u}")
        if st == 201:
            new_users.add(u)
        elif st != 409:
            sys.exit(f"creating hub user {u}: HTTP {st}: {_short(body)}")
    running = [u for u in users if server_state(hub.call("GET", f"/hub/api/users/{u}")[1]) != "stopped"]
    if running:
        stop_servers(hub, proxy, running)

    results: list[RoundResult] = []
    for rnd in range(a.repeat):
        res = run_round(a, hub, proxy, users, rnd, new_users)
        results.append(res)
        if rnd < a.repeat - 1 or not a.keep:
            stop_servers(hub, proxy, users)

    starts = [s for r in results for s in r.starts]
    api_lat = [x for r in results for x in r.api_latency_ms]
    host: dict[str, float] = {}
    for r in results:
        for k, v in r.host_cpu_s.items():
            host[k] = host.get(k, 0.0) + v
    for r in results:
        notes += [x for x in r.notes if x not in notes]
    print(format_report(starts, a.n, cores, api_lat, host, notes))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "meta": {
                        "n": a.n,
                        "repeat": a.repeat,
                        "cores": cores,
                        "url": a.url,
                        "poll_s": a.poll,
                        "milestones": dict(MILESTONES),
                    },
                    "rounds": [
                        {"t0": r.t0, "api_latency_ms": r.api_latency_ms, "host_cpu_s": r.host_cpu_s}
                        for r in results
                    ],
                    "starts": [asdict(s) for s in starts],
                    "notes": notes,
                },
                f,
                indent=1,
            )
        print(f"raw timestamps: {a.json}")
    if not a.keep:
        t = time.monotonic()
        for u in users:
            hub.call("DELETE", f"/hub/api/users/{u}")
        print(f"removed {a.n} benchmark user(s) in {time.monotonic() - t:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
