"""The organiser's view of the NPUs: who holds each one, since when, and how the card is doing.

The pure part (`holders`, `snapshot`, `rows`, `metric_families`) turns what the host reports —
`npu-smi info` and `docker inspect` of the running containers — into the admin page /hub/npus
and the Prometheus gauges on /hub/metrics. `NpuWatch` is the only I/O: it runs npu-smi and asks
the Docker engine, in the background of the hub's event loop (never blocking a request), every
`interval` seconds, and keeps the last snapshot for the metrics collector.

Who holds an NPU is read from the containers themselves, whatever the policy: a student's server
names its NPUs in its label (`ml-workshop.npus`), any other container by its device nodes
(`/dev/davinciN`, the `devices` runtime) or by `ASCEND_VISIBLE_DEVICES` (the Ascend Docker
Runtime). So `shared` NPUs show every student, `static` and `exclusive` ones their holder, and a
service container (ml-workshop-hcie) or a container an operator started by hand shows too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .alloc import parse_id_list
from .container import CONTAINER_PREFIX, LABEL_NPUS, LABEL_PROFILE, LABEL_USER
from .npu import parse_npu_smi_chips

log = logging.getLogger("ml_workshop.npuwatch")

_DAVINCI = re.compile(r"^/dev/davinci(\d+)$")
MB = 1024 * 1024
# The card states the driver role accepts as healthy (ascend_driver_healthy_states' default).
HEALTHY = ("OK",)


def container_npus(info: Mapping[str, Any]) -> list[int]:
    """The NPU ids one container holds (docker inspect): its ml-workshop.npus label, its
    /dev/davinciN device nodes and its ASCEND_VISIBLE_DEVICES, together. A value that is not a
    list of ids (`all`, garbage) adds nothing: the device nodes still count."""
    config = info.get("Config") or {}
    labels = config.get("Labels") or {}
    ids: set[int] = set()
    try:
        ids.update(parse_id_list(labels.get(LABEL_NPUS, "")))
    except ValueError:
        pass
    for dev in (info.get("HostConfig") or {}).get("Devices") or []:
        m = _DAVINCI.match(str(dev.get("PathOnHost", "")))
        if m:
            ids.add(int(m.group(1)))
    for env in config.get("Env") or []:
        key, _, value = str(env).partition("=")
        if key == "ASCEND_VISIBLE_DEVICES":
            try:
                ids.update(parse_id_list(value))
            except ValueError:
                pass
    return sorted(ids)


def holder(info: Mapping[str, Any]) -> dict[str, str]:
    """Who a container is: {'kind': student|service|container, 'name', 'container', 'profile',
    'since'} (since: the container's start, ISO 8601 UTC as Docker gives it, to the second)."""
    config = info.get("Config") or {}
    labels = config.get("Labels") or {}
    cname = str(info.get("Name", "")).lstrip("/")
    since = str((info.get("State") or {}).get("StartedAt", ""))
    since = since.split(".", 1)[0].removesuffix("Z") + "Z" if since else ""
    user = labels.get(LABEL_USER)
    if user:
        return {
            "kind": "student",
            "name": str(user),
            "container": cname,
            "profile": str(labels.get(LABEL_PROFILE, "")),
            "since": since,
        }
    kind = (
        "service"
        if cname.startswith("ml-workshop-") and not cname.startswith(CONTAINER_PREFIX)
        else "container"
    )
    return {"kind": kind, "name": cname, "container": cname, "profile": "", "since": since}


def holders(inspects: Iterable[Mapping[str, Any]]) -> dict[int, list[dict[str, str]]]:
    """{npu id: [holder, ...]} over the running containers, holders sorted by name."""
    out: dict[int, list[dict[str, str]]] = {}
    for info in inspects:
        if not (info.get("State") or {}).get("Running", True):
            continue
        who = holder(info)
        for i in container_npus(info):
            out.setdefault(i, []).append(who)
    for lst in out.values():
        lst.sort(key=lambda h: (h["kind"] != "student", h["name"]))
    return out


def snapshot(
    *,
    server: str,
    policy: str,
    student_ids: Sequence[int],
    smi_text: str | None,
    smi_error: str,
    inspects: Iterable[Mapping[str, Any]],
    taken_at: float,
    healthy: Sequence[str] = HEALTHY,
) -> dict[str, Any]:
    """One look at the server, JSON-able: the chips npu-smi lists (or its error), every NPU that
    npu-smi lists, the hub hands to students (hub_npu_ids) or a container holds, with its
    holders."""
    chips = parse_npu_smi_chips(smi_text or "") if smi_text is not None else []
    held = holders(inspects)
    by_npu: dict[int, list[dict[str, Any]]] = {}
    for c in chips:
        by_npu.setdefault(c["npu"], []).append(c)
    ids = sorted(set(by_npu) | set(student_ids) | set(held))
    npus = []
    for i in ids:
        cs = by_npu.get(i, [])
        states = sorted({c["health"] for c in cs})
        npus.append(
            {
                "npu": i,
                "name": cs[0]["name"] if cs else "",
                "listed": bool(cs),
                "health": "/".join(states) if states else "",
                "healthy": bool(cs) and all(c["health"] in healthy for c in cs),
                "for_students": i in student_ids,
                "chips": cs,
                "holders": held.get(i, []),
            }
        )
    return {
        "server": server,
        "policy": policy,
        "taken_at": taken_at,
        "npu_smi_ok": smi_text is not None and not smi_error,
        "npu_smi_error": smi_error,
        "npus": npus,
    }


def _sum(values: Iterable[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return sum(vals) if vals else None


def _mean(values: Iterable[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return round(sum(vals) / len(vals), 1) if vals else None


def rows(snap: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The page's table: one row per NPU, its chips summed (memory, power) or averaged (AI core,
    temperature), its holders as `name (profile, since)`."""
    out = []
    for n in snap.get("npus", []):
        cs = n["chips"]
        out.append(
            {
                "npu": n["npu"],
                "name": n["name"],
                "health": n["health"] or ("not listed by npu-smi" if snap.get("npu_smi_ok") else "unknown"),
                "healthy": n["healthy"],
                "for_students": n["for_students"],
                "aicore_percent": _mean(c["aicore_percent"] for c in cs),
                "hbm_used_mb": _sum(c["hbm_used_mb"] for c in cs),
                "hbm_total_mb": _sum(c["hbm_total_mb"] for c in cs),
                "memory_used_mb": _sum(c["memory_used_mb"] for c in cs),
                "memory_total_mb": _sum(c["memory_total_mb"] for c in cs),
                "power_w": _sum(c["power_w"] for c in cs),
                "temp_c": _mean(c["temp_c"] for c in cs),
                "holders": n["holders"],
            }
        )
    return out


# (chip key in MB, gauge in bytes, help)
_MEMORY_GAUGES = (
    ("hbm_used_mb", "ml_workshop_npu_hbm_used_bytes", "HBM in use"),
    ("hbm_total_mb", "ml_workshop_npu_hbm_total_bytes", "HBM size"),
    ("memory_used_mb", "ml_workshop_npu_memory_used_bytes", "on-card DDR memory in use"),
    ("memory_total_mb", "ml_workshop_npu_memory_total_bytes", "on-card DDR memory size"),
)
Sample = tuple[dict[str, str], float]
Family = tuple[str, str, list[Sample]]  # name, help, samples


def metric_families(snap: Mapping[str, Any] | None) -> list[Family]:
    """The gauges for /hub/metrics (Prometheus naming: base units, one family per quantity).
    Every chip's numbers carry `npu` and `chip`; allocation carries `npu`, `holder`, `kind`."""
    fams: dict[str, Family] = {}

    def add(name: str, help_: str, labels: dict[str, str], value: Any) -> None:
        fam = fams.setdefault(name, (name, help_, []))
        if value is not None:
            fam[2].append((labels, float(value)))

    add("ml_workshop_npu_smi_up", "1 when npu-smi answered at the last look, else 0", {}, 0)
    if not snap:
        return list(fams.values())
    fams["ml_workshop_npu_smi_up"][2][:] = [({}, 1.0 if snap.get("npu_smi_ok") else 0.0)]
    per_user: dict[str, int] = {}
    for n in snap.get("npus", []):
        npu = str(n["npu"])
        for c in n["chips"]:
            lab = {"npu": npu, "chip": str(c["chip"]), "name": c["name"]}
            add(
                "ml_workshop_npu_healthy",
                "1 when the chip's health is OK in npu-smi",
                lab,
                int(c["health"] in HEALTHY),
            )
            add(
                "ml_workshop_npu_aicore_utilization_percent",
                "AI core utilisation (npu-smi AICore(%))",
                lab,
                c["aicore_percent"],
            )
            for key, name, help_ in _MEMORY_GAUGES:
                add(name, help_, lab, None if c[key] is None else c[key] * MB)
            add("ml_workshop_npu_power_watts", "power draw", lab, c["power_w"])
            add("ml_workshop_npu_temperature_celsius", "temperature", lab, c["temp_c"])
        add(
            "ml_workshop_npu_for_students",
            "1 when the hub hands this NPU to students (hub_npu_ids)",
            {"npu": npu},
            int(n["for_students"]),
        )
        for h in n["holders"]:
            add(
                "ml_workshop_npu_allocated",
                "1 for each holder of an NPU (a student's server, a service or another container)",
                {"npu": npu, "holder": h["name"], "kind": h["kind"]},
                1,
            )
            if h["kind"] == "student":
                per_user[h["name"]] = per_user.get(h["name"], 0) + 1
    for user, count in sorted(per_user.items()):
        add("ml_workshop_user_npus", "NPUs held by a student's running server", {"user": user}, count)
    return list(fams.values())


class NpuWatch:
    """Runs `npu-smi info` and reads the running containers every `interval` seconds in the
    background of the hub's event loop; `last` is the latest snapshot (None before the first)."""

    def __init__(
        self,
        *,
        server: str,
        policy: str,
        student_ids: Sequence[int],
        npu_smi: str,
        interval: float = 15.0,
        docker_url: str = "unix://var/run/docker.sock",
        smi_timeout: float = 20.0,
    ) -> None:
        self.server = server
        self.policy = policy
        self.student_ids = list(student_ids)
        self.npu_smi = npu_smi
        self.interval = interval
        self.docker_url = docker_url
        self.smi_timeout = smi_timeout
        self.last: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> NpuWatch:
        """One watch per hub: traitlets deep-copies the configuration (extra_handlers' arguments),
        and a running watch holds an asyncio task that cannot be copied."""
        return self

    async def _npu_smi(self) -> tuple[str | None, str]:
        if not self.npu_smi:
            return None, "no npu-smi on this server (ansible_local.ascend.npu_smi)"
        if not os.access(self.npu_smi, os.X_OK):
            return None, f"{self.npu_smi} is not there"
        try:
            proc = await asyncio.create_subprocess_exec(
                self.npu_smi, "info", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            out, _ = await asyncio.wait_for(proc.communicate(), self.smi_timeout)
        except (OSError, asyncio.TimeoutError) as e:
            return None, f"{self.npu_smi} info: {e or 'no answer in time'}"
        text = out.decode(errors="replace")
        if proc.returncode:
            return None, f"{self.npu_smi} info exited {proc.returncode}: {text.strip()[:200]}"
        return text, ""

    def _inspect_running(self) -> list[dict[str, Any]]:
        import docker  # the hub's venv has it (dockerspawner)

        client = docker.APIClient(base_url=self.docker_url, version="auto", timeout=10)
        try:
            found = []
            for c in client.containers(filters={"status": "running"}):
                try:
                    found.append(client.inspect_container(c["Id"]))
                except docker.errors.NotFound:
                    continue  # gone between the list and the inspect
            return found
        finally:
            client.close()

    async def refresh(self, max_age: float = 0.0) -> dict[str, Any]:
        """A snapshot no older than `max_age` seconds (one look at a time)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.last is not None and time.time() - self.last["taken_at"] <= max_age:
                return self.last
            smi, smi_error = await self._npu_smi()
            try:
                inspects = await asyncio.to_thread(self._inspect_running)
            except Exception as e:  # the engine down: NPUs still shown, holders unknown
                log.warning("NPU watch: cannot read the containers: %s", e)
                inspects = []
            self.last = snapshot(
                server=self.server,
                policy=self.policy,
                student_ids=self.student_ids,
                smi_text=smi,
                smi_error=smi_error,
                inspects=inspects,
                taken_at=time.time(),
            )
            return self.last

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh(max_age=self.interval / 2)
            except Exception:
                log.exception("NPU watch: refresh failed")
            await asyncio.sleep(self.interval)

    def ensure_started(self) -> None:
        """Start the background loop on the running event loop (once); without a running loop
        (the configuration loaded outside the hub) nothing starts yet."""
        if self._task is not None and not self._task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._task = loop.create_task(self._loop())


class NpuCollector:
    """prometheus_client collector over a NpuWatch's last snapshot (JupyterHub serves the default
    registry on /hub/metrics, to tokens with the read:metrics scope)."""

    def __init__(self, watch: NpuWatch) -> None:
        self.watch = watch

    def describe(self) -> list[Any]:
        return []  # no describe-time collection (the registry would call collect() at register)

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        self.watch.ensure_started()
        for name, help_, samples in metric_families(self.watch.last):
            keys = sorted({k for labels, _ in samples for k in labels})
            fam = GaugeMetricFamily(name, help_, labels=keys)
            for labels, value in samples:
                fam.add_metric([labels.get(k, "") for k in keys], value)
            yield fam


_collector: list[NpuCollector] = []  # the one registered in this process


def install(watch: NpuWatch) -> NpuWatch:
    """Register the collector in prometheus_client's default registry once per process (a later
    configuration load points it at its own watch) and start the watch when the hub's event loop
    runs already (JupyterHub loads its configuration inside it); the page and the first scrape
    start it otherwise."""
    from prometheus_client import REGISTRY

    if not _collector:
        _collector.append(NpuCollector(watch))
        REGISTRY.register(_collector[0])
    _collector[0].watch = watch
    watch.ensure_started()
    return watch
