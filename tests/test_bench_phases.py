"""benchmarks/hub/phases.py: the pure parts (docker events, docker logs, the hub journal, the
proxy's routes, the hub's user models, cgroup CPU files, percentiles, the report) on sample
lines in the formats the tools print. The script itself runs only on a hub host."""

import json
import math
import pathlib

import pytest
from scriptload import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks/hub/phases.py"


def _load():
    return load_script(SCRIPT, "bench_phases")


ph = _load()

T0 = 1795918460.0  # 2026-11-29T02:14:20Z


def _event(action, cid, user, nano, **attrs):
    name = f"ml-workshop-user-{user}"
    attributes = {"image": "ml-workshop-user:latest", "name": name, "ml-workshop.user": user, **attrs}
    return json.dumps(
        {
            "status": action,
            "id": cid,
            "from": "ml-workshop-user:latest",
            "Type": "container",
            "Action": action,
            "Actor": {"ID": cid, "Attributes": attributes},
            "scope": "local",
            "time": nano // 10**9,
            "timeNano": nano,
        }
    )


# --- timestamps ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-29T02:14:20Z",
        "2026-11-29T02:14:20.000000000Z",
        "2026-11-29T02:14:20.000000+00:00",
        "2026-11-29T02:14:20.000000+0000",
        "2026-11-29T03:14:20.000000+01:00",
        "2026-11-28T21:14:20.000000-0500",
    ],
)
def test_iso_timestamps_of_docker_and_journalctl(text):
    assert ph.parse_iso_ts(text) == T0


def test_nanoseconds_keep_microsecond_precision():
    assert ph.parse_iso_ts("2026-11-29T02:14:21.123456789Z") == pytest.approx(T0 + 1.123456789, abs=1e-6)


def test_not_a_timestamp():
    with pytest.raises(ValueError):
        ph.parse_iso_ts("[mlw-start] sshd started")


# --- docker events ---------------------------------------------------------------------------------


def test_docker_events_create_start_die():
    lines = [
        _event("create", "c0ffee01", "phase000", 1795918460_250000000),
        "",
        "not json",
        json.dumps({"Type": "network", "Action": "connect", "Actor": {"ID": "n1", "Attributes": {}}}),
        _event("start", "c0ffee01", "phase000", 1795918460_700000000),
        _event("create", "beef0002", "phase001", 1795918460_300000000),
        _event("die", "c0ffee01", "phase000", 1795918465_000000000, exitCode="1"),
    ]
    events = ph.parse_docker_events(lines)
    assert [(e.action, e.user) for e in events] == [
        ("create", "phase000"),
        ("start", "phase000"),
        ("create", "phase001"),
        ("die", "phase000"),
    ]
    assert events[0].time == pytest.approx(T0 + 0.25, abs=1e-6)
    m = ph.container_milestones(events, "phase000", T0)
    assert m["created"] == pytest.approx(T0 + 0.25, abs=1e-6)
    assert m["started"] == pytest.approx(T0 + 0.7, abs=1e-6)
    assert m["id"] == "c0ffee01"
    assert m["exit_code"] == "1"
    assert ph.container_milestones(events, "phase001", T0) == {
        "created": pytest.approx(T0 + 0.3, abs=1e-6),
        "id": "beef0002",
    }


def test_docker_events_of_an_earlier_round_are_ignored():
    events = ph.parse_docker_events(
        [
            _event("create", "old", "phase000", 1795918400_000000000),
            _event("start", "old", "phase000", 1795918401_000000000),
            _event("create", "new", "phase000", 1795918460_100000000),
            _event("start", "new", "phase000", 1795918460_600000000),
        ]
    )
    m = ph.container_milestones(events, "phase000", T0)
    assert m["id"] == "new"
    assert m["started"] - m["created"] == pytest.approx(0.5, abs=1e-6)


def test_docker_events_without_the_label_use_the_container_name():
    line = json.dumps(
        {
            "Type": "container",
            "Action": "start",
            "Actor": {"ID": "abc", "Attributes": {"name": "ml-workshop-user-phase007"}},
            "time": 1795918460,
        }
    )
    (e,) = ph.parse_docker_events([line])
    assert (e.user, e.time, e.id) == ("phase007", T0, "abc")
    assert ph.user_of_container("jupyterhub") == ""


# --- docker logs -----------------------------------------------------------------------------------

FIRST_START_LOG = """\
2026-11-29T02:14:20.900000000Z [mlw-start] ==============================================================
2026-11-29T02:14:20.900100000Z [mlw-start] SSH root password (generated on the first start): Abc123def456ghi7
2026-11-29T02:14:20.900200000Z [mlw-start] it is stored in /home/student/work/.ml-workshop/root-password; change it with passwd
2026-11-29T02:14:20.900300000Z [mlw-start] ==============================================================
2026-11-29T02:14:21.123456789Z [mlw-start] sshd started (password login: yes); connect with: ssh -p 22222 root@localhost
2026-11-29T02:14:21.200000000Z [mlw-ssh-activity] reporting SSH sessions as activity of phase000 every 60 s
2026-11-29T02:14:21.900000000Z [I 2026-11-29 02:14:21.899 ServerApp] jupyterhub | extension was successfully linked.
2026-11-29T02:14:22.100000000Z [I 2026-11-29 02:14:22.100 ServerApp] jupyterlab | extension was successfully loaded.
2026-11-29T02:14:22.456000000Z [I 2026-11-29 02:14:22.456 ServerApp] Jupyter Server 2.21.1 is running at:
2026-11-29T02:14:22.456100000Z [I 2026-11-29 02:14:22.456 ServerApp] http://ml-workshop-user-phase000:8888/user/phase000/lab
2026-11-29T02:14:22.456200000Z [I 2026-11-29 02:14:22.456 ServerApp] Use Control-C to stop this server and shut down all kernels (twice to skip confirmation).
"""


def test_log_milestones_of_a_first_start():
    lines = ph.parse_docker_log(FIRST_START_LOG)
    assert len(lines) == 11
    m = ph.log_milestones(lines)
    assert m["first_start"] is True
    assert m["entrypoint_done"] == pytest.approx(T0 + 1.123456789, abs=1e-6)
    # the background mlw-ssh-activity line is ours, not the server's
    assert m["server_process"] == pytest.approx(T0 + 1.9, abs=1e-6)
    assert m["server_listening"] == pytest.approx(T0 + 2.456, abs=1e-6)


def test_log_milestones_of_a_later_start_with_stderr_after_stdout():
    # `docker logs` writes the container's stdout and stderr to two pipes: merged out of order
    text = (
        "2026-11-29T02:14:22.000000000Z [W 2026-11-29 02:14:22.000 ServerApp] a warning before start-up\n"
        "2026-11-29T02:14:23.000000000Z [I 2026-11-29 02:14:23.000 ServerApp] Jupyter Server 2.21.1 is running at:\n"
        "2026-11-29T02:14:20.500000000Z [mlw-start] root password restored from /home/student/work/.ml-workshop"
        " (see /home/student/work/.ml-workshop/root-password; 'passwd' changes are kept)\n"
        "2026-11-29T02:14:21.000000000Z [mlw-start] sshd started (password login: yes); connect with: ssh ...\n"
    )
    m = ph.log_milestones(ph.parse_docker_log(text))
    assert m["first_start"] is False
    assert m["entrypoint_done"] == T0 + 1
    assert m["server_process"] == T0 + 2
    assert m["server_listening"] == T0 + 3


def test_log_milestones_without_the_entrypoint_line_take_jupyters_first_line():
    text = (
        "2026-11-29T02:14:20.100000000Z sshd: no hostkeys available -- exiting.\n"
        "2026-11-29T02:14:21.000000000Z [I 2026-11-29 02:14:21.000 JupyterHubSingleUser] Starting jupyterhub\n"
    )
    m = ph.log_milestones(ph.parse_docker_log(text))
    assert "entrypoint_done" not in m and "first_start" not in m
    assert m["server_process"] == T0 + 1
    assert "server_listening" not in m


def test_docker_log_lines_without_a_timestamp_are_skipped():
    assert ph.parse_docker_log("no timestamp here\n\n") == []


# --- the hub's journal -----------------------------------------------------------------------------

JOURNAL = """\
2026-11-29T02:14:10.000000+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:10.000 JupyterHub spawner:217] Starting phase000 with NPUs [0], SSH port 22222
2026-11-29T02:14:20.021000+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:20.020 JupyterHub spawner:217] Starting phase0010 with NPUs [1], SSH port 22233
2026-11-29T02:14:20.030000+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:20.029 JupyterHub spawner:217] Starting phase000 with NPUs [0,1], SSH port 22222
2026-11-29T02:14:20.031000+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:20.031 JupyterHub dockerspawner:1302] Created container ml-workshop-user-phase000 (id: c0ffee0) from image ml-workshop-user:latest
2026-11-29T02:14:22.789012+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:22.788 JupyterHub base:1144] User phase000 took 2.760 seconds to start
2026-11-29T02:14:22.790000+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:22.790 JupyterHub proxy:331] Adding user phase000 to proxy /user/phase000/ => http://172.17.0.3:8888
2026-11-29T02:14:22.850000+00:00 hub jupyterhub[812]: [I 2026-11-29 02:14:22.850 JupyterHub log:192] 201 POST /hub/api/users/phase000/server (ml-workshop-api@127.0.0.1) 2849.51ms
2026-11-29T02:14:23.000000+00:00 hub jupyterhub[812]: [W 2026-11-29 02:14:23.000 JupyterHub spawner:187] Start of phase001's server refused [npu_busy]: All NPUs are in use. (exclusive policy: 0 free)
-- Boot 0123456789abcdef --
"""


def test_journal_lines():
    entries = ph.parse_journal(JOURNAL)
    assert len(entries) == 8
    t, msg = entries[2]
    assert t == pytest.approx(T0 + 0.03, abs=1e-6)
    assert msg == "Starting phase000 with NPUs [0,1], SSH port 22222"


def test_journal_milestones_of_one_start():
    entries = ph.parse_journal(JOURNAL)
    m = ph.journal_milestones(entries, "phase000", T0)
    # the line of an earlier round (02:14:10) and phase0010's line are not this start's
    assert m["allocated"] == pytest.approx(T0 + 0.03, abs=1e-6)
    assert (m["npus"], m["ssh_port"]) == ("0,1", 22222)
    assert m["spawner_returned"] == pytest.approx(T0 + 2.789012, abs=1e-6)
    assert m["hub_took_s"] == 2.76
    assert m["proxy_add_logged"] == pytest.approx(T0 + 2.79, abs=1e-6)
    assert "errors" not in m


def test_journal_refusal_is_a_reason():
    m = ph.journal_milestones(ph.parse_journal(JOURNAL), "phase001", T0)
    assert m == {"errors": ["refused [npu_busy]: All NPUs are in use. (exclusive policy: 0 free)"]}


def test_journal_with_compact_offsets_and_colours():
    line = (
        "2026-11-29T02:14:22.789012+0000 hub jupyterhub[812]: \x1b[32m[I 2026-11-29 02:14:22.788 "
        "JupyterHub base:1144]\x1b[0m User phase000 took 2.760 seconds to start"
    )
    ((t, msg),) = ph.parse_journal(line)
    assert msg == "User phase000 took 2.760 seconds to start"
    assert t == pytest.approx(T0 + 2.789012, abs=1e-6)


# --- proxy routes, user models, the lab page -------------------------------------------------------


def test_route_users():
    routes = {
        "/": {"hub": True, "target": "http://127.0.0.1:8081", "jupyterhub": True},
        "/user/phase000": {"user": "phase000", "server_name": "", "target": "http://172.17.0.3:8888"},
        "/user/phase0010": {"user": "phase0010", "target": "http://172.17.0.4:8888"},
        "/user/other": {"user": "other"},
    }
    assert ph.route_users(routes, ["phase000", "phase001"]) == {"phase000"}
    assert ph.route_users({"/base/user/phase001/": {}}, ["phase001"]) == {"phase001"}


def test_server_states():
    pending = {"name": "phase000", "servers": {"": {"name": "", "ready": False, "pending": "spawn"}}}
    ready = {"name": "phase001", "servers": {"": {"name": "", "ready": True, "pending": None}}}
    assert ph.server_state(pending) == "pending"
    assert ph.server_state(ready) == "ready"
    assert ph.server_state({"name": "x", "servers": {}}) == "stopped"
    assert ph.server_state(None) == "stopped"
    users = ["phase000", "phase001", "phase002"]
    assert ph.users_states([pending, ready], users) == {
        "phase000": "pending",
        "phase001": "ready",
        "phase002": "stopped",
    }
    assert ph.users_states({"items": [ready], "_pagination": {}}, ["phase001"]) == {"phase001": "ready"}


def test_lab_page():
    lab = '<html><head><title>JupyterLab</title><script id="jupyter-config-data" type="application/json">'
    assert ph.is_lab_page(200, "text/html; charset=UTF-8", lab)
    assert not ph.is_lab_page(200, "text/html", "<html><title>JupyterHub</title> Sign in")
    assert not ph.is_lab_page(503, "text/html", lab)


# --- CPU -------------------------------------------------------------------------------------------


def test_cgroup_files():
    stat = "usage_usec 1523456\nuser_usec 1200000\nsystem_usec 323456\nnr_periods 0\n"
    assert ph.cpu_seconds_from_cpu_stat(stat) == pytest.approx(1.523456)
    assert ph.cpu_seconds_from_cpu_stat("nr_periods 0\n") is None
    assert ph.cpu_seconds_from_cpuacct_usage("1523456000\n") == pytest.approx(1.523456)
    assert ph.cpu_seconds_from_file("/x/cpuacct.usage", "2000000000") == 2.0
    assert ph.cpu_seconds_from_file("/x/cpu.stat", stat) == pytest.approx(1.523456)


def test_cgroup_candidates():
    v2 = ph.cpu_stat_candidates("abc", "0::/system.slice/docker-abc.scope\n")
    assert v2[0] == "/sys/fs/cgroup/system.slice/docker-abc.scope/cpu.stat"
    assert "/sys/fs/cgroup/docker/abc/cpu.stat" in v2
    assert len(v2) == len(set(v2))
    v1 = ph.cpu_stat_candidates(
        "abc", "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/x\n"
    )
    assert v1[0] == "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpuacct.usage"
    nested = ph.cpu_stat_candidates("abc", "0::/docker/abc\n", root="/tmp/cg")
    assert nested[0] == "/tmp/cg/docker/abc/cpu.stat"
    # a root cgroup would count the whole machine
    assert (
        ph.cpu_stat_candidates("abc", "0::/\n")[0] == "/sys/fs/cgroup/system.slice/docker-abc.scope/cpu.stat"
    )


# --- numbers and the report ------------------------------------------------------------------------


def test_percentiles_like_spawn_burst():
    vals = [float(i) for i in range(1, 21)]
    assert ph.pct(vals, 50) == 11.0  # index round(9.5) = 10
    assert ph.pct(vals, 95) == 19.0  # index round(18.05) = 18
    assert math.isnan(ph.pct([], 50))
    s = ph.summarize([3.0, 1.0, 2.0])
    assert (s["n"], s["p50"], s["max"], s["mean"]) == (3, 2.0, 3.0, 2.0)
    assert ph.summarize([]) == {"n": 0}


def test_cpu_bound():
    assert ph.cpu_bound(20, 1.5, 2) == 15.0
    assert ph.cpu_bound(1, 1.5, 0) == 1.5


def _start(user, rnd, offsets, cpu=1.5, first=None, failure=None):
    ms = {k: T0 + v for k, v in offsets.items()}
    return ph.Start(
        user=user,
        round=rnd,
        new_user=True,
        ms=ms,
        first_start=first,
        cpu_at_ready_s=cpu,
        cpu_after_lab_s=cpu + 0.3 if cpu is not None else None,
        cpu_source="/sys/fs/cgroup/system.slice/docker-<id>.scope/cpu.stat",
        failure=failure,
    )


FULL = {
    "request": 0.0,
    "allocated": 0.03,
    "created": 0.25,
    "started": 0.7,
    "entrypoint_done": 1.1,
    "server_process": 1.9,
    "server_listening": 2.45,
    "spawner_returned": 2.8,
    "proxy_add_logged": 2.81,
    "route_added": 2.85,
    "hub_ready": 2.9,
    "lab_page": 3.6,
}


def test_phases_chain_from_request_to_lab_page():
    keys = [k for k, _ in ph.MILESTONES]
    for _, a, b in ph.PHASES + ph.TOTALS:
        assert keys.index(a) < keys.index(b)
    chain = [ph.PHASES[0][1]] + [b for _, _, b in ph.PHASES]
    assert chain[0] == "request" and chain[-1] == "lab_page"
    assert all(prev[2] == nxt[1] for prev, nxt in zip(ph.PHASES, ph.PHASES[1:]))


def test_report_of_one_start():
    report = ph.format_report([_start("phase000", 0, FULL, first=True)], n=1, cores=2, api_latency_ms=[12.0])
    assert "1 user(s) at once x 1 round(s) = 1 start(s); ready 1, failures 0; 2 cores" in report
    assert "first starts of new users" in report and "later starts" not in report
    assert "value s" in report and "p95 s" not in report
    row = next(x for x in report.splitlines() if "request -> NPU allocation done" in x)
    assert row.split()[-2:] == ["0.030", "0.030"]
    row = next(x for x in report.splitlines() if "request -> first JupyterLab page" in x)
    assert row.split()[-1] == "3.600"
    assert "CPU s per start (container cgroup at ready): p50 1.50" in report
    assert "CPU bound" not in report  # only for a burst
    assert "not measured" not in report


def test_report_of_repeated_single_starts_splits_first_and_later():
    later = {k: v * 0.5 for k, v in FULL.items()}
    starts = [_start("phase000", 0, FULL, first=True)] + [
        _start("phase000", r, later, first=False) for r in range(1, 4)
    ]
    report = ph.format_report(starts, n=1, cores=2)
    assert "first starts of new users (SSH host keys and root password generated): 1 start(s)" in report
    assert "later starts (keys and password restored): 3 start(s)" in report
    later_part = report.split("later starts")[1]
    row = next(x for x in later_part.splitlines() if "request -> hub ready" in x)
    assert row.split()[-4:] == ["3", "1.450", "1.450", "1.450"]


def test_report_of_a_burst_prints_the_cpu_bound():
    starts = [_start(f"phase{i:03d}", 0, {k: v * (1 + i) for k, v in FULL.items()}) for i in range(4)]
    starts.append(_start("phase004", 0, {"request": 0.0}, cpu=None, failure="HTTP 500: spawn failed"))
    report = ph.format_report(starts, n=5, cores=2, host_cpu_s={"jupyterhub.service": 2.5})
    # 5 x mean(1.5) / 2 = 3.75; p95 of request->ready over 2.9, 5.8, 8.7, 11.6 = 11.6
    assert "CPU bound: 5 x 1.50 CPU-s / 2 cores = 3.75 s;  1.5 x bound = 5.62 s;" in report
    assert "p95 request -> ready = 11.600 s (over)" in report
    assert "all 5 starts succeeded: no" in report
    assert "failures (1):\n  phase004 (round 1): HTTP 500: spawn failed" in report
    assert "host units' CPU s during the starts: jupyterhub 2.50  (per start 0.50)" in report


def test_report_names_missing_milestones():
    partial = {k: v for k, v in FULL.items() if k not in ("allocated", "route_added")}
    report = ph.format_report([_start("phase000", 0, partial, first=True)], n=1, cores=2, notes=["x"])
    assert "allocated (hub journal: 'Starting NAME with NPUs [..], SSH port N'): missing" in report
    assert "route_added (proxy API: /user/NAME in GET /api/routes): missing" in report
    row = next(x for x in report.splitlines() if "request -> NPU allocation done" in x)
    assert row.split()[-3:] == ["0", "-", "-"]


def test_first_start_fallback_without_log():
    s = ph.Start(user="u", round=0, new_user=True)
    assert ph.is_first_start(s)
    assert not ph.is_first_start(ph.Start(user="u", round=1, new_user=True))
    assert not ph.is_first_start(ph.Start(user="u", round=0, new_user=False))


@pytest.mark.parametrize("args", [["--prefix", "Bench"], ["--prefix", "a-b"], ["-n", "0"], ["--repeat", "0"]])
def test_bad_arguments_stop_before_any_request(args, capsys):
    with pytest.raises(SystemExit) as e:
        ph.main(args)
    assert e.value.code == 2


def test_report_without_cpu_says_why():
    s = _start("phase000", 0, FULL, cpu=None, first=True)
    s.cpu_source = "no cgroup file, no docker API stats"
    other = _start("phase001", 0, FULL, cpu=None, first=True)
    other.cpu_source = ""
    report = ph.format_report([s, other], n=2, cores=2)
    assert "CPU s per start: not measured (no cgroup file, no docker API stats)" in report
    assert "CPU bound: not computed;  p95 request -> ready = 2.900 s" in report
    assert "all 2 starts succeeded: yes" in report
