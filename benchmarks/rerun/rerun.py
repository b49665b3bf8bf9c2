#!/usr/bin/env python3
"""How long a no-op re-run of site.yml takes, and where the time goes (issue 13).

Runs ansible-playbook (from PATH) K times against an inventory, each run read through the
ansible.posix.json stdout callback, and prints for each run: wall time (start-up, in tasks,
between tasks, tail), task executions (task x host; skipped ones apart), the play recap per host,
the changed tasks (a no-op re-run has none), seconds per role, the slowest task executions,
seconds per module (action) with counts, tasks per second.

  python3 benchmarks/rerun/rerun.py -i INVENTORY [PLAYBOOK] [--runs 2] [--limit HOSTS] [-e VARS]...
      [--fact-cache DIR] [--ssh-from-docker CONTAINER[=HOST][,...]] [--connection-note TEXT]
      [--json FILE] [--save-logs DIR]

PLAYBOOK defaults to site.yml at the repository's root. ansible-playbook runs in the repository
(with its ansible.cfg unless ANSIBLE_CONFIG is set). --ssh-from-docker reaches lab containers
over SSH instead of `docker exec` (it installs and starts sshd in them, authorizes a throw-away
key and adds an inventory overlay); see README.md in this directory. Stdlib only (Python 3.11);
timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SLOWEST = 15
NO_ROLE = "-"
# Every option on one line: the ssh connection plugin splits it like a shell would.
SSH_COMMON_ARGS = (
    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=auto -o ControlPersist=60s"
)
# Role variables whose default reads `ansible_host` at task time. Ansible sets that variable to the
# connection's address in every task (PlayContext.update_vars): the inventory name under `docker
# exec`, the IP under the SSH overlay. The overlay pins these to the inventory name (unless the
# inventory or the playbook's group_vars/host_vars set them or ansible_host), so the SSH runs
# render the same files as the converge did: hub_ssh_host is in the hub's settings and its
# self-signed certificate.
PINNED_TO_INVENTORY_NAME = ("hub_ssh_host",)
KEY_COMMENT_PREFIX = "mlw-rerun-bench-"


# --- the json callback's document ------------------------------------------------------------------


def parse_time(text: str) -> float:
    """Seconds since the epoch of the callback's timestamps ('2026-11-29T03:10:47.051025Z', UTC)."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def role_of(path: str) -> str:
    """The role a task's path is in: the segment after the last '/roles/', else NO_ROLE."""
    if "/roles/" not in path:
        return NO_ROLE
    return path.rsplit("/roles/", 1)[1].split("/", 1)[0] or NO_ROLE


def short_action(action: str) -> str:
    """ansible.builtin.template and ansible.legacy.template are both `template`."""
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if action.startswith(prefix):
            return action[len(prefix) :]
    return action or "?"


def host_status(result: dict[str, Any]) -> str:
    """One host's result of one task: unreachable, failed, skipped, changed or ok."""
    if result.get("unreachable"):
        return "unreachable"
    if result.get("failed"):
        return "failed"
    if result.get("skipped"):
        return "skipped"
    if result.get("changed"):
        return "changed"
    return "ok"


def parse_output(stdout: str) -> dict[str, Any]:
    """The callback's JSON document from ansible-playbook's stdout; lines printed before it (e.g.
    by a plugin that writes to stdout) are skipped. ValueError if there is none."""
    try:
        doc = json.loads(stdout)
        if isinstance(doc, dict) and "plays" in doc:
            return doc
    except json.JSONDecodeError:
        pass
    decoder = json.JSONDecoder()
    starts = [0] if stdout.startswith("{") else []
    pos = stdout.find("\n{")
    while pos >= 0:
        starts.append(pos + 1)
        pos = stdout.find("\n{", pos + 1)
    for pos in starts:
        try:
            doc, _ = decoder.raw_decode(stdout, pos)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and "plays" in doc:
            return doc
    raise ValueError("no ansible.posix.json document in the output")


def _bucket() -> dict[str, Any]:
    return {"seconds": 0.0, "tasks": 0, "executions": 0, "skipped": 0, "items": 0}


def analyse(doc: dict[str, Any], slowest: int = SLOWEST) -> dict[str, Any]:
    """Everything the report shows, from one run's ansible.posix.json document.

    A task entry is one task of one play (under the linear strategy: all hosts together; its
    duration runs from the task's start to the last host's result). Entries without results
    (meta tasks such as flush_handlers) or without an end time count apart and add no time.
    An execution is one host's non-skipped result of one task entry; a loop is one execution per
    host, its items counted in `items`."""
    tasks: list[dict[str, Any]] = []
    starts: list[float] = []
    ends: list[float] = []
    no_end = 0
    no_result = 0
    for play in doc.get("plays", []):
        pdur = play.get("play", {}).get("duration", {})
        if pdur.get("start"):
            starts.append(parse_time(pdur["start"]))
        if pdur.get("end"):
            ends.append(parse_time(pdur["end"]))
        for entry in play.get("tasks", []):
            meta = entry.get("task", {})
            dur = meta.get("duration", {})
            hosts: dict[str, dict[str, Any]] = entry.get("hosts") or {}
            seconds = None
            if dur.get("start") and dur.get("end"):
                start, end = parse_time(dur["start"]), parse_time(dur["end"])
                seconds = max(0.0, end - start)
                starts.append(start)
                ends.append(end)
            else:
                no_end += 1
            if not hosts:
                no_result += 1
                continue
            statuses = {h: host_status(r) for h, r in hosts.items()}
            actions = [r.get("action") for r in hosts.values() if r.get("action")]
            items = sum(
                len(r["results"])
                for h, r in hosts.items()
                if isinstance(r.get("results"), list) and statuses[h] != "skipped"
            )
            tasks.append(
                {
                    "play": play.get("play", {}).get("name", ""),
                    "name": meta.get("name", ""),
                    "path": meta.get("path", ""),
                    "role": role_of(meta.get("path", "")),
                    "action": short_action(actions[0] if actions else ""),
                    "seconds": seconds,
                    "hosts": statuses,
                    "changed_hosts": sorted(h for h, r in hosts.items() if r.get("changed")),
                    "items": items,
                }
            )

    counts = {s: 0 for s in ("ok", "changed", "failed", "skipped", "unreachable")}
    changed: list[dict[str, str]] = []
    failed: list[dict[str, str]] = []
    roles: dict[str, dict[str, Any]] = {}
    actions_: dict[str, dict[str, Any]] = {}
    for t in tasks:
        executed = sum(1 for s in t["hosts"].values() if s != "skipped")
        skipped = len(t["hosts"]) - executed
        for bucket in (roles.setdefault(t["role"], _bucket()), actions_.setdefault(t["action"], _bucket())):
            bucket["seconds"] += t["seconds"] or 0.0
            bucket["tasks"] += 1
            bucket["executions"] += executed
            bucket["skipped"] += skipped
            bucket["items"] += t["items"]
        for host, status in sorted(t["hosts"].items()):
            counts[status] += 1
            if status in ("failed", "unreachable"):
                failed.append({"host": host, "role": t["role"], "task": t["name"], "status": status})
        changed.extend({"host": host, "role": t["role"], "task": t["name"]} for host in t["changed_hosts"])

    timed = [t for t in tasks if t["seconds"] is not None]
    slow = sorted(timed, key=lambda t: t["seconds"], reverse=True)[:slowest]
    executions = sum(counts[s] for s in ("ok", "changed", "failed", "unreachable"))
    return {
        "task_entries": len(tasks),
        "entries_without_result": no_result,
        "entries_without_end": no_end,
        "executions": executions,
        "skipped": counts["skipped"],
        "status_counts": counts,
        "loop_items": sum(t["items"] for t in tasks),
        "task_seconds": sum(t["seconds"] or 0.0 for t in tasks),
        "first_start": min(starts) if starts else None,
        "last_end": max(ends) if ends else None,
        "stats": doc.get("stats", {}),
        "changed": changed,
        "failed": failed,
        "roles": _sorted_buckets(roles),
        "actions": _sorted_buckets(actions_),
        "slowest": [
            {
                "seconds": t["seconds"],
                "role": t["role"],
                "task": t["name"],
                "action": t["action"],
                "hosts": sorted(h for h, s in t["hosts"].items() if s != "skipped"),
                "skipped_hosts": sorted(h for h, s in t["hosts"].items() if s == "skipped"),
                "items": t["items"],
            }
            for t in slow
        ],
    }


def _sorted_buckets(buckets: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"name": name, **b} for name, b in buckets.items()]
    return sorted(rows, key=lambda r: (-r["seconds"], r["name"]))


def breakdown(analysis: dict[str, Any], launched: float, finished: float) -> dict[str, float | None]:
    """Where a run's wall time went: start-up (process start to the first play; reading the
    playbook, roles and inventory), in tasks (sum of task durations), between tasks (the rest of
    first play start to last result), tail (last result to exit: the recap)."""
    wall = finished - launched
    first, last = analysis.get("first_start"), analysis.get("last_end")
    if first is None or last is None:
        return {
            "wall": wall,
            "startup": None,
            "tasks": analysis.get("task_seconds", 0.0),
            "between": None,
            "tail": None,
        }
    tasks = analysis["task_seconds"]
    return {
        "wall": wall,
        "startup": first - launched,
        "tasks": tasks,
        "between": (last - first) - tasks,
        "tail": finished - last,
    }


def rates(analysis: dict[str, Any], wall: float) -> dict[str, float | None]:
    executed = analysis["executions"]
    everything = executed + analysis["skipped"]
    return {
        "executions_per_s": executed / wall if wall > 0 else None,
        "s_per_execution": wall / executed if executed else None,
        "with_skipped_per_s": everything / wall if wall > 0 else None,
        "s_per_task_entry": wall / analysis["task_entries"] if analysis["task_entries"] else None,
    }


# --- the report ------------------------------------------------------------------------------------


def _s(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _share_table(
    kind: str, width: int, rows: list[dict[str, Any]], in_tasks: float, items: bool
) -> list[str]:
    """Rows of seconds per role or per module, with their share of the time in tasks."""
    head = f"  {kind:<{width}} {'s':>8} {'share':>6} {'tasks':>6} {'runs':>6} {'skipped':>8}"
    out = [head + (f" {'items':>6}" if items else "")]
    for row in rows:
        share = 100 * row["seconds"] / in_tasks if in_tasks else 0.0
        line = (
            f"  {row['name']:<{width}} {row['seconds']:>8.1f} {share:>5.1f}% {row['tasks']:>6} "
            f"{row['executions']:>6} {row['skipped']:>8}"
        )
        out.append(line + (f" {row['items']:>6}" if items else ""))
    return out


def render_run(label: str, run: dict[str, Any], slowest: int = SLOWEST) -> list[str]:
    """The printed lines of one run (`run`: rc, wall, breakdown, rates, analysis)."""
    a = run["analysis"]
    b = run["breakdown"]
    r = run["rates"]
    out = [f"=== {label}: wall {b['wall']:.1f} s, rc {run['rc']}"]
    out.append(
        f"time: start-up {_s(b['startup'])} s, in tasks {_s(b['tasks'])} s, between tasks {_s(b['between'])} s, "
        f"tail {_s(b['tail'])} s"
    )
    out.append(
        f"task executions (task x host): {a['executions']} run + {a['skipped']} skipped, in {a['task_entries']} "
        f"task entries ({a['loop_items']} loop items; {a['entries_without_result']} entries without a result)"
    )
    out.append(
        f"rate: {_s(r['executions_per_s'], 2)} executions/s, {_s(r['s_per_execution'], 2)} s per execution; "
        f"{_s(r['with_skipped_per_s'], 2)}/s with skipped ones; {_s(r['s_per_task_entry'], 2)} s per task entry"
    )
    out.append("recap:")
    for host, s in sorted(a["stats"].items()):
        out.append(
            f"  {host:<32} ok={s.get('ok', 0):<4} changed={s.get('changed', 0):<3} failed={s.get('failures', 0):<3} "
            f"skipped={s.get('skipped', 0):<4} unreachable={s.get('unreachable', 0)} ignored={s.get('ignored', 0)} "
            f"rescued={s.get('rescued', 0)}"
        )
    total_changed = sum(s.get("changed", 0) for s in a["stats"].values())
    if a["changed"]:
        out.append(f"changed tasks ({len(a['changed'])}; NOT a no-op run):")
        out.extend(f"  {c['host']}  [{c['role']}]  {c['task']}" for c in a["changed"])
    else:
        out.append(f"changed tasks: none (recap: changed={total_changed})")
    if a["failed"]:
        out.append(f"failed/unreachable task results ({len(a['failed'])}; ignored ones included):")
        out.extend(f"  {f['host']}  [{f['role']}]  {f['task']}  ({f['status']})" for f in a["failed"])
    in_tasks = a["task_seconds"] or 0.0
    out.append(f"seconds per role (sum of task durations; {in_tasks:.1f} s in tasks):")
    out.extend(_share_table("role", 28, a["roles"], in_tasks, items=False))
    out.append(f"slowest {min(slowest, len(a['slowest']))} task entries:")
    for t in a["slowest"][:slowest]:
        items = f", {t['items']} items" if t["items"] else ""
        hosts = ",".join(t["hosts"]) or "all skipped"
        out.append(f"  {t['seconds']:>7.2f} s  [{t['role']}] {t['task']}  ({t['action']}; {hosts}{items})")
    out.append("seconds per module (action):")
    out.extend(_share_table("action", 40, a["actions"], in_tasks, items=True))
    return out


def render_summary(runs: list[dict[str, Any]]) -> list[str]:
    out = ["=== summary"]
    out.append(
        f"  {'run':<6} {'rc':>3} {'wall s':>8} {'tasks s':>8} {'runs':>6} {'skipped':>8} {'changed':>8}"
    )
    for i, run in enumerate(runs, 1):
        a = run.get("analysis")
        if a is None:
            out.append(f"  {i:<6} {run['rc']:>3} {run['wall']:>8.1f}   (no JSON: {run.get('error', '')})")
            continue
        changed = sum(s.get("changed", 0) for s in a["stats"].values())
        out.append(
            f"  {i:<6} {run['rc']:>3} {run['wall']:>8.1f} {a['task_seconds']:>8.1f} {a['executions']:>6} "
            f"{a['skipped']:>8} {changed:>8}"
        )
    return out


# --- the header ------------------------------------------------------------------------------------


def mem_total(meminfo: str) -> int | None:
    """Bytes of MemTotal from /proc/meminfo's text."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            return int(parts[1]) * 1024
    return None


def config_settings(dump: list[dict[str, Any]], env: dict[str, str]) -> dict[str, str]:
    """Pipelining, forks, gathering and the config file from `ansible-config dump --format json`;
    ANSIBLE_PIPELINING from the environment wins (it is what the runs get)."""
    by_name = {d.get("name"): d for d in dump if isinstance(d, dict)}

    def show(name: str) -> str:
        d = by_name.get(name)
        if d is None:
            return "?"
        origin = d.get("origin") or "default"
        return f"{d.get('value')} ({origin})"

    pipelining = (
        f"{env['ANSIBLE_PIPELINING']} (env ANSIBLE_PIPELINING)"
        if "ANSIBLE_PIPELINING" in env
        else show("ANSIBLE_PIPELINING")
    )
    cfg = by_name.get("CONFIG_FILE", {}).get("value")
    return {
        "pipelining": pipelining,
        "forks": show("DEFAULT_FORKS"),
        "gathering": show("DEFAULT_GATHERING"),
        "config_file": str(cfg) if cfg else "none",
    }


def inventory_hosts(doc: dict[str, Any]) -> list[str]:
    """Every host in `ansible-inventory --list` output."""
    hosts = set(doc.get("_meta", {}).get("hostvars", {}))
    for name, group in doc.items():
        if name != "_meta" and isinstance(group, dict):
            hosts.update(group.get("hosts", []))
    return sorted(hosts)


def connections(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Hosts by connection plugin (ansible_connection; `ssh (default)` when unset)."""
    hostvars = doc.get("_meta", {}).get("hostvars", {})
    out: dict[str, list[str]] = {}
    for host in inventory_hosts(doc):
        conn = hostvars.get(host, {}).get("ansible_connection") or "ssh (default)"
        out.setdefault(str(conn), []).append(host)
    return out


def format_connections(by_conn: dict[str, list[str]]) -> str:
    return "; ".join(f"{conn}: {', '.join(hosts)}" for conn, hosts in sorted(by_conn.items())) or "?"


# --- SSH to lab containers (--ssh-from-docker) -----------------------------------------------------


def parse_ssh_targets(spec: str) -> list[tuple[str, str]]:
    """'c1,c2=host2' -> [(c1, c1), (c2, host2)]: container name, inventory host name."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        container, _, host = part.partition("=")
        out.append((container.strip(), host.strip() or container.strip()))
    if not out:
        raise ValueError("--ssh-from-docker: no container named")
    return out


def container_ip(inspect: list[dict[str, Any]] | dict[str, Any]) -> str:
    """The IPv4 address on the container's first network with one, from `docker inspect C`."""
    obj = inspect[0] if isinstance(inspect, list) else inspect
    networks = (obj.get("NetworkSettings") or {}).get("Networks") or {}
    for net in networks.values():
        if net and net.get("IPAddress"):
            return net["IPAddress"]
    raise ValueError(f"{obj.get('Name', 'container')}: no IP address on any network")


def overlay_vars(host: str, ip: str, key_file: str, hostvars: dict[str, Any]) -> dict[str, str]:
    """Host variables that make `host` an SSH-connected instance (`hostvars`: its inventory
    variables as `ansible-inventory --list --playbook-dir` gives them).

    The address goes in ansible_ssh_host, not ansible_host: roles read other hosts' ansible_host
    from hostvars (the cache host's client list), and would see a change. In each task Ansible
    sets ansible_host to the connection's address either way, so the variables whose default
    reads it are pinned to the inventory name, what they were under `docker exec`."""
    out = {
        "ansible_connection": "ssh",
        "ansible_ssh_host": ip,
        "ansible_user": "root",
        "ansible_ssh_private_key_file": key_file,
        "ansible_ssh_common_args": SSH_COMMON_ARGS,
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    if "ansible_host" not in hostvars:
        for name in PINNED_TO_INVENTORY_NAME:
            if name not in hostvars:
                out[name] = hostvars.get("ansible_docker_host", host)
    return out


def overlay_yaml(hosts: dict[str, dict[str, str]]) -> str:
    """A YAML inventory defining these hosts under all.hosts (JSON strings are YAML scalars)."""
    lines = ["---", "# rerun.py --ssh-from-docker: the same hosts, reached over SSH", "all:", "  hosts:"]
    for host, variables in hosts.items():
        lines.append(f"    {json.dumps(host)}:")
        lines.extend(f"      {name}: {json.dumps(value)}" for name, value in variables.items())
    return "\n".join(lines) + "\n"


# --- running things --------------------------------------------------------------------------------


def run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False, **kw)


def must(cmd: Sequence[str], what: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    p = run(cmd, **kw)
    if p.returncode != 0:
        raise SystemExit(
            f"{what} failed (rc {p.returncode}): {' '.join(cmd)}\n{(p.stdout + p.stderr)[-2000:]}"
        )
    return p


def child_env(fact_cache: str | None) -> dict[str, str]:
    env = dict(os.environ)
    # An empty ANSIBLE_CALLBACKS_ENABLED is an error in ansible-core 2.19, and other callbacks
    # would write to stdout next to the JSON document.
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    if fact_cache:
        env["ANSIBLE_CACHE_PLUGIN"] = "ansible.builtin.jsonfile"
        env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = fact_cache
        env["ANSIBLE_CACHE_PLUGIN_TIMEOUT"] = "7200"
    return env


def machine() -> dict[str, Any]:
    try:
        mem = mem_total(Path("/proc/meminfo").read_text())
    except OSError:
        mem = None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "machine": platform.machine(),
        "kernel": platform.release(),
        "loadavg": load,
    }


def ansible_version(env: dict[str, str]) -> str:
    p = run(["ansible", "--version"], env=env, cwd=REPO)
    return (p.stdout.splitlines() or ["?"])[0].strip()


def ansible_config(env: dict[str, str]) -> dict[str, str]:
    p = run(["ansible-config", "dump", "--format", "json"], env=env, cwd=REPO)
    try:
        dump = json.loads(p.stdout)
    except json.JSONDecodeError:
        dump = []
    return config_settings(dump if isinstance(dump, list) else [], env)


def ansible_inventory(
    inventories: Sequence[str], env: dict[str, str], limit: str | None = None, playbook_dir: str | None = None
) -> dict[str, Any] | None:
    cmd = ["ansible-inventory", *_inventory_args(inventories), "--list"]
    if limit:
        cmd += ["--limit", limit]
    if playbook_dir:
        cmd += ["--playbook-dir", playbook_dir]
    p = run(cmd, env=env, cwd=REPO)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        return None


def _inventory_args(inventories: Iterable[str]) -> list[str]:
    out: list[str] = []
    for inv in inventories:
        out += ["-i", inv]
    return out


class SshFromDocker:
    """sshd in each named lab container, a throw-away key authorized for root, an inventory overlay."""

    def __init__(self, targets: list[tuple[str, str]]):
        self.targets = targets
        self.tmp = Path(tempfile.mkdtemp(prefix="rerun-ssh-"))
        self.key = self.tmp / "id_ed25519"
        self.comment = KEY_COMMENT_PREFIX + os.urandom(4).hex()
        self.overlay = self.tmp / "ssh-overlay.yml"
        self.done: list[str] = []

    def setup(self, inventories: Sequence[str], env: dict[str, str], playbook_dir: str) -> Path:
        for tool in ("docker", "ssh", "ssh-keygen"):
            if not shutil.which(tool):
                raise SystemExit(f"--ssh-from-docker needs {tool} on PATH")
        inv = ansible_inventory(inventories, env, playbook_dir=playbook_dir)
        if inv is None:
            raise SystemExit(
                "ansible-inventory --list failed on the inventory (needed for --ssh-from-docker)"
            )
        known = set(inventory_hosts(inv))
        missing = [h for _, h in self.targets if h not in known]
        if missing:
            raise SystemExit(
                f"--ssh-from-docker: not in the inventory: {', '.join(missing)} (CONTAINER=HOST names the host)"
            )
        must(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", self.comment, "-f", str(self.key)],
            "ssh-keygen",
        )
        pub = self.key.with_suffix(".pub").read_text()
        hosts: dict[str, dict[str, str]] = {}
        for container, host in self.targets:
            self._sshd(container)
            must(
                [
                    "docker",
                    "exec",
                    "-i",
                    container,
                    "sh",
                    "-c",
                    "umask 077 && mkdir -p /root/.ssh && chmod 700 /root/.ssh"
                    " && cat >> /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys",
                ],
                f"authorizing the key in {container}",
                input=pub,
            )
            self.done.append(container)
            ip = container_ip(
                json.loads(must(["docker", "inspect", container], f"docker inspect {container}").stdout)
            )
            _wait_port(ip, 22, 30)
            hostvars = inv.get("_meta", {}).get("hostvars", {}).get(host, {})
            hosts[host] = overlay_vars(host, ip, str(self.key), hostvars)
            print(f"ssh: {container} -> {host} at {ip}", flush=True)
        self.overlay.write_text(overlay_yaml(hosts))
        return self.overlay

    @staticmethod
    def _sshd(container: str) -> None:
        if run(["docker", "exec", container, "test", "-x", "/usr/sbin/sshd"]).returncode != 0:
            print(f"ssh: installing openssh-server in {container}", flush=True)
            install = ["docker", "exec", "-e", "DEBIAN_FRONTEND=noninteractive", container, "apt-get"]
            install += ["install", "-y", "-q", "--no-install-recommends", "openssh-server"]
            if run(install).returncode != 0:  # no package lists yet
                must(
                    ["docker", "exec", container, "apt-get", "update", "-q"], f"apt-get update in {container}"
                )
                must(install, f"installing openssh-server in {container}")
        must(
            ["docker", "exec", container, "systemctl", "enable", "--now", "ssh"],
            f"starting sshd in {container}",
        )

    def cleanup(self) -> None:
        for container in self.done:
            unauthorize = ["sed", "-i", f"/ {self.comment}$/d", "/root/.ssh/authorized_keys"]
            run(["docker", "exec", container, *unauthorize])
        shutil.rmtree(self.tmp, ignore_errors=True)


def _wait_port(host: str, port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError as err:
            if time.monotonic() > end:
                raise SystemExit(f"{host}:{port} does not answer from here ({err})") from err
            time.sleep(0.5)


def fill_fact_cache(inventories: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """`ansible -i INV all -m setup` once: every host's facts in the cache (a --limit run reads the
    others' facts from it)."""
    t0 = time.monotonic()
    p = run(
        ["ansible", *_inventory_args(inventories), "all", "-m", "ansible.builtin.setup"], env=env, cwd=REPO
    )
    wall = time.monotonic() - t0
    if p.returncode != 0:
        print(
            f"WARNING: filling the fact cache: rc {p.returncode}\n{(p.stdout + p.stderr)[-1500:]}", flush=True
        )
    return {"rc": p.returncode, "wall": wall}


def run_playbook(cmd: Sequence[str], env: dict[str, str], slowest: int) -> tuple[dict[str, Any], str, str]:
    """One ansible-playbook run: its numbers, stdout and stderr."""
    launched = time.time()
    t0 = time.monotonic()
    p = run(cmd, env={**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, cwd=REPO)
    wall = time.monotonic() - t0
    finished = launched + wall
    result: dict[str, Any] = {"rc": p.returncode, "wall": wall, "launched": launched}
    try:
        doc = parse_output(p.stdout)
    except ValueError as err:
        result["error"] = str(err)
        return result, p.stdout, p.stderr
    analysis = analyse(doc, slowest)
    result["analysis"] = analysis
    result["breakdown"] = breakdown(analysis, launched, finished)
    result["rates"] = rates(analysis, wall)
    return result, p.stdout, p.stderr


def header_lines(h: dict[str, Any]) -> list[str]:
    m = h["machine"]
    mem = f"{m['memory_bytes'] / 2**30:.1f} GiB" if m["memory_bytes"] else "? GiB"
    load = " ".join(f"{x:.2f}" for x in m["loadavg"]) if m["loadavg"] else "?"
    out = [
        f"date: {h['date']}",
        f"machine: {m['cores']} cores, {mem}, {m['machine']}, kernel {m['kernel']}, load average {load}",
        f"ansible: {h['ansible']}",
        f"playbook: {h['playbook']}",
        f"inventory: {' + '.join(h['inventory'])}",
        f"limit: {h['limit'] or '(none)'}",
        f"extra vars: {' '.join(h['extra_vars']) or '(none)'}",
        f"connection: {h['connection']}" + (f" — {h['connection_note']}" if h["connection_note"] else ""),
        f"pipelining: {h['config']['pipelining']}; forks {h['config']['forks']}; gathering {h['config']['gathering']}",
        f"config file: {h['config']['config_file']}",
        f"fact cache: {h['fact_cache'] or '(none: facts gathered by the runs)'}",
        f"runs: {h['runs']}",
    ]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument(
        "playbook", nargs="?", default=str(REPO / "site.yml"), help="default: site.yml at the repository root"
    )
    ap.add_argument(
        "-i", "--inventory", action="append", required=True, help="inventory file or directory (repeatable)"
    )
    ap.add_argument("-n", "--runs", type=int, default=2, help="ansible-playbook runs (default 2)")
    ap.add_argument("-l", "--limit", help="passed to ansible-playbook --limit")
    ap.add_argument(
        "-e", "--extra-vars", action="append", default=[], help="passed to ansible-playbook -e (repeatable)"
    )
    ap.add_argument("--connection-note", default="", help="text for the header's connection line")
    ap.add_argument(
        "--fact-cache", metavar="DIR", help="jsonfile fact cache, filled once with `ansible all -m setup`"
    )
    ap.add_argument(
        "--ssh-from-docker", metavar="CONTAINER[=HOST][,...]", help="reach these lab containers over SSH"
    )
    ap.add_argument("--json", metavar="FILE", help="write all numbers here")
    ap.add_argument("--save-logs", metavar="DIR", help="keep each run's raw JSON (and stderr) here")
    ap.add_argument(
        "--slowest", type=int, default=SLOWEST, help=f"slowest task entries shown (default {SLOWEST})"
    )
    a = ap.parse_args(argv)
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    if not shutil.which("ansible-playbook"):
        raise SystemExit("ansible-playbook is not on PATH (activate the project's venv)")

    # Children run in the repository: paths given relative to the caller's directory are made absolute.
    inventories = [str(Path(i).resolve()) if Path(i).exists() else i for i in a.inventory]
    playbook = str(Path(a.playbook).resolve())
    fact_cache = str(Path(a.fact_cache).resolve()) if a.fact_cache else None
    env = child_env(fact_cache)

    ssh: SshFromDocker | None = None
    try:
        if a.ssh_from_docker:
            ssh = SshFromDocker(parse_ssh_targets(a.ssh_from_docker))
            inventories.append(str(ssh.setup(inventories, env, str(Path(playbook).parent))))
        inv = ansible_inventory(inventories, env, limit=a.limit)
        connection = format_connections(connections(inv)) if inv else "? (ansible-inventory failed)"
        if ssh:
            connection += " (SSH overlay from --ssh-from-docker; ControlMaster/ControlPersist 60s)"
        header = {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
            "machine": machine(),
            "ansible": ansible_version(env),
            "playbook": playbook,
            "inventory": inventories,
            "limit": a.limit,
            "extra_vars": a.extra_vars,
            "connection": connection,
            "connection_note": a.connection_note,
            "config": ansible_config(env),
            "fact_cache": fact_cache,
            "runs": a.runs,
        }
        print("\n".join(header_lines(header)), flush=True)
        report: dict[str, Any] = {"header": header, "runs": []}
        if fact_cache:
            Path(fact_cache).mkdir(parents=True, exist_ok=True)
            report["fact_cache_fill"] = fill_fact_cache(inventories, env)
            print(
                f"fact cache filled in {report['fact_cache_fill']['wall']:.1f} s (not part of the runs)",
                flush=True,
            )

        cmd = ["ansible-playbook", *_inventory_args(inventories), playbook]
        if a.limit:
            cmd += ["--limit", a.limit]
        for extra in a.extra_vars:
            cmd += ["-e", extra]
        logs = Path(a.save_logs) if a.save_logs else None
        if logs:
            logs.mkdir(parents=True, exist_ok=True)
        ok = True
        for i in range(1, a.runs + 1):
            result, stdout, stderr = run_playbook(cmd, env, a.slowest)
            report["runs"].append(result)
            if logs:
                (logs / f"run-{i}.json").write_text(stdout)
                (logs / f"run-{i}.stderr").write_text(stderr)
            print("", flush=True)
            if "analysis" not in result:
                ok = False
                print(
                    f"=== run {i}/{a.runs}: wall {result['wall']:.1f} s, rc {result['rc']}: {result['error']}"
                )
                print(stderr[-3000:] or stdout[-3000:], flush=True)
                continue
            ok = ok and result["rc"] == 0
            print("\n".join(render_run(f"run {i}/{a.runs}", result, a.slowest)), flush=True)
        print("")
        print("\n".join(render_summary(report["runs"])))
        if a.json:
            Path(a.json).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return 0 if ok else 1
    finally:
        if ssh:
            ssh.cleanup()


if __name__ == "__main__":
    sys.exit(main())
