"""benchmarks/rerun/rerun.py: the pure parts (the ansible.posix.json document of a run, the report,
the header's sources, the SSH overlay for lab containers) and main()'s wiring with the commands
faked. The fixture is a real run's document (ansible-core 2.19, ansible.posix json callback) of a
tiny localhost playbook: two hosts, fact gathering, a loop, a loop with a skipped item, a changed
task, skipped tasks, include_role of a tiny role and the same role in a second play, a failed task
with ignore_errors, meta flush_handlers (entries without a result or an end), a handler. Facts and
module invocations were left out of it to keep it small."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest
from scriptload import load_script

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks/rerun/rerun.py"
FIXTURE = ROOT / "tests/fixtures/rerun/localhost-run.json"


def _load():
    return load_script(SCRIPT, "bench_rerun")


rr = _load()


@pytest.fixture(scope="module")
def doc():
    return json.loads(FIXTURE.read_text())


def _task(name, path, start, end, hosts):
    duration = {"start": start}
    if end:
        duration["end"] = end
    return {"task": {"name": name, "path": path, "id": "x", "duration": duration}, "hosts": hosts}


def _doc(tasks, stats=None):
    return {
        "plays": [{"play": {"name": "p", "duration": {"start": "2026-11-29T03:00:00Z"}}, "tasks": tasks}],
        "stats": stats or {},
    }


# --- small parsers ---------------------------------------------------------------------------------


def test_callback_timestamps_are_utc():
    assert rr.parse_time("2026-11-29T03:10:47.051025Z") == pytest.approx(1795921847.051025, abs=1e-6)
    assert rr.parse_time("2026-11-29T04:10:47.051025+01:00") == pytest.approx(1795921847.051025, abs=1e-6)
    assert rr.parse_time("2026-11-29T03:10:47.051025") == pytest.approx(1795921847.051025, abs=1e-6)


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/work/wt-rerun/roles/hub/tasks/configure.yml:12", "hub"),
        ("/work/wt-rerun/roles/hub/handlers/main.yml:3", "hub"),
        ("/home/roles/ml-workshop/roles/cache_proxy/tasks/main.yml:1", "cache_proxy"),
        ("/c/ansible_collections/ns/coll/roles/thing/tasks/main.yml:4", "thing"),
        ("/work/wt-rerun/site.yml:7", "-"),
        ("", "-"),
    ],
)
def test_role_of_a_task_path(path, role):
    assert rr.role_of(path) == role


def test_short_action():
    assert rr.short_action("ansible.builtin.template") == "template"
    assert rr.short_action("ansible.legacy.command") == "command"
    assert rr.short_action("gather_facts") == "gather_facts"
    assert rr.short_action("community.docker.docker_container") == "community.docker.docker_container"
    assert rr.short_action("") == "?"


def test_host_status_precedence():
    assert rr.host_status({"changed": True, "failed": True}) == "failed"
    assert rr.host_status({"unreachable": True, "failed": True}) == "unreachable"
    assert rr.host_status({"skipped": True, "changed": False}) == "skipped"
    assert rr.host_status({"changed": True}) == "changed"
    assert rr.host_status({"changed": False}) == "ok"


def test_parse_output_plain_and_after_other_lines(doc):
    text = FIXTURE.read_text()
    assert rr.parse_output(text)["stats"] == doc["stats"]
    noisy = "[WARNING]: something {odd}\n{not json\n" + text + "\ntrailing line\n"
    assert rr.parse_output(noisy)["stats"] == doc["stats"]


@pytest.mark.parametrize("text", ["", "ERROR! the playbook could not be found\n", '{"a": 1}\n'])
def test_parse_output_without_a_document(text):
    with pytest.raises(ValueError):
        rr.parse_output(text)


# --- one run's document ----------------------------------------------------------------------------


def test_analyse_counts(doc):
    a = rr.analyse(doc)
    assert a["task_entries"] == 16
    assert a["entries_without_result"] == 2  # the two flush_handlers
    assert a["entries_without_end"] == 2
    assert a["executions"] == 23
    assert a["skipped"] == 9
    assert a["status_counts"] == {"ok": 17, "changed": 4, "failed": 2, "skipped": 9, "unreachable": 0}
    assert a["loop_items"] == 10  # 3 copies x 2 hosts + 2 commands (one skipped) x 2 hosts


def test_analyse_agrees_with_the_recap(doc):
    """Per host: executions = the recap's ok (+ failures, unreachable), skipped = its skipped."""
    a = rr.analyse(doc, slowest=100)
    assert a["stats"] == doc["stats"]
    per_host: dict[str, dict[str, int]] = {}
    for play in doc["plays"]:
        for entry in play["tasks"]:
            for host, res in entry["hosts"].items():
                key = "skipped" if rr.host_status(res) == "skipped" else "run"
                per_host.setdefault(host, {"run": 0, "skipped": 0})[key] += 1
    for host, s in doc["stats"].items():
        assert per_host[host]["run"] == s["ok"] + s["failures"] + s["unreachable"]
        assert per_host[host]["skipped"] == s["skipped"]
    assert sum(h["run"] for h in per_host.values()) == a["executions"]


def test_analyse_changed_and_failed(doc):
    a = rr.analyse(doc)
    assert a["changed"] == [
        {"host": "h1", "role": "-", "task": "Always changed"},
        {"host": "h2", "role": "-", "task": "Always changed"},
        {"host": "h1", "role": "-", "task": "Notify"},
        {"host": "h2", "role": "-", "task": "Notify"},
    ]
    assert len(a["changed"]) == sum(s["changed"] for s in doc["stats"].values())
    assert {(f["host"], f["task"], f["status"]) for f in a["failed"]} == {
        ("h1", "Failed but ignored", "failed"),
        ("h2", "Failed but ignored", "failed"),
    }


def test_analyse_time_per_role_and_module(doc):
    a = rr.analyse(doc)
    durations = []
    for play in doc["plays"]:
        for entry in play["tasks"]:
            d = entry["task"]["duration"]
            if "end" in d:
                durations.append(rr.parse_time(d["end"]) - rr.parse_time(d["start"]))
    assert a["task_seconds"] == pytest.approx(sum(durations))
    roles = {r["name"]: r for r in a["roles"]}
    assert set(roles) == {"-", "tiny"}
    assert (roles["tiny"]["tasks"], roles["tiny"]["executions"], roles["tiny"]["skipped"]) == (4, 4, 4)
    assert sum(r["seconds"] for r in a["roles"]) == pytest.approx(a["task_seconds"])
    assert [r["seconds"] for r in a["roles"]] == sorted((r["seconds"] for r in a["roles"]), reverse=True)
    actions = {r["name"]: r for r in a["actions"]}
    assert set(actions) == {"copy", "command", "gather_facts", "template", "file", "debug", "include_role"}
    assert (actions["copy"]["tasks"], actions["copy"]["executions"], actions["copy"]["items"]) == (1, 2, 6)
    assert (actions["command"]["tasks"], actions["command"]["executions"]) == (4, 8)
    assert (actions["template"]["tasks"], actions["template"]["executions"]) == (2, 4)
    assert (actions["debug"]["executions"], actions["debug"]["skipped"]) == (3, 7)
    assert (actions["include_role"]["executions"], actions["include_role"]["skipped"]) == (2, 2)
    assert sum(r["seconds"] for r in a["actions"]) == pytest.approx(a["task_seconds"])


def test_analyse_slowest(doc):
    a = rr.analyse(doc, slowest=3)
    assert len(a["slowest"]) == 3
    secs = [t["seconds"] for t in a["slowest"]]
    assert secs == sorted(secs, reverse=True)
    assert secs[0] == pytest.approx(max(r["seconds"] for r in rr.analyse(doc, slowest=100)["slowest"]))
    top = a["slowest"][0]
    assert (top["task"], top["action"], top["hosts"], top["items"]) == (
        "Loop of copies",
        "copy",
        ["h1", "h2"],
        6,
    )
    full = rr.analyse(doc, slowest=100)["slowest"]
    assert len(full) == 16  # every entry with a result has an end in this run
    only_h2 = next(t for t in full if t["task"] == "Skipped on h1 only")
    assert (only_h2["hosts"], only_h2["skipped_hosts"]) == (["h2"], ["h1"])


def test_entry_without_end_counts_but_adds_no_time():
    tasks = [
        _task(
            "a",
            "/r/roles/x/tasks/main.yml:1",
            "2026-11-29T03:00:00Z",
            "2026-11-29T03:00:02Z",
            {"h": {"action": "ansible.builtin.file"}},
        ),
        _task(
            "b",
            "/r/roles/x/tasks/main.yml:5",
            "2026-11-29T03:00:02Z",
            None,
            {"h": {"action": "ansible.builtin.copy", "changed": True}},
        ),
        _task("c", "/r/site.yml:3", "2026-11-29T03:00:03Z", None, {}),
    ]
    a = rr.analyse(_doc(tasks))
    assert (a["task_entries"], a["entries_without_end"], a["entries_without_result"]) == (2, 2, 1)
    assert a["task_seconds"] == pytest.approx(2.0)
    assert [s["task"] for s in a["slowest"]] == ["a"]
    assert a["changed"] == [{"host": "h", "role": "x", "task": "b"}]
    assert {r["name"]: r["tasks"] for r in a["actions"]} == {"file": 1, "copy": 1}


def test_loop_items_of_a_skipped_host_are_not_counted():
    res_run = {
        "action": "ansible.builtin.copy",
        "results": [{"changed": False}, {"changed": True}],
        "changed": True,
    }
    res_skip = {"action": "ansible.builtin.copy", "skipped": True, "results": [{"skipped": True}] * 2}
    a = rr.analyse(
        _doc(
            [
                _task(
                    "loop",
                    "/r/site.yml:9",
                    "2026-11-29T03:00:00Z",
                    "2026-11-29T03:00:01Z",
                    {"a": res_run, "b": res_skip},
                )
            ]
        )
    )
    assert (a["executions"], a["skipped"], a["loop_items"]) == (1, 1, 2)
    assert a["changed"] == [{"host": "a", "role": "-", "task": "loop"}]


def test_unreachable_host():
    tasks = [
        _task(
            "t",
            "/r/site.yml:1",
            "2026-11-29T03:00:00Z",
            "2026-11-29T03:00:10Z",
            {"n": {"unreachable": True, "action": "gather_facts"}},
        )
    ]
    a = rr.analyse(_doc(tasks))
    assert a["status_counts"]["unreachable"] == 1
    assert a["failed"] == [{"host": "n", "role": "-", "task": "t", "status": "unreachable"}]


def test_breakdown_and_rates(doc):
    a = rr.analyse(doc)
    launched = a["first_start"] - 1.5
    finished = a["last_end"] + 0.25
    b = rr.breakdown(a, launched, finished)
    assert b["startup"] == pytest.approx(1.5)
    assert b["tail"] == pytest.approx(0.25)
    assert b["tasks"] == pytest.approx(a["task_seconds"])
    assert b["startup"] + b["tasks"] + b["between"] + b["tail"] == pytest.approx(b["wall"])
    assert b["between"] >= 0
    r = rr.rates(a, 10.0)
    assert r["executions_per_s"] == pytest.approx(2.3)
    assert r["s_per_execution"] == pytest.approx(10.0 / 23)
    assert r["with_skipped_per_s"] == pytest.approx(3.2)
    assert r["s_per_task_entry"] == pytest.approx(10.0 / 16)
    empty = {
        "task_seconds": 0.0,
        "first_start": None,
        "last_end": None,
        "executions": 0,
        "skipped": 0,
        "task_entries": 0,
    }
    assert rr.breakdown(empty, 0.0, 3.0)["startup"] is None
    assert rr.rates(empty, 3.0)["s_per_execution"] is None


# --- the report ------------------------------------------------------------------------------------


def _run(doc, wall=15.0):
    a = rr.analyse(doc)
    return {
        "rc": 0,
        "wall": wall,
        "analysis": a,
        "breakdown": rr.breakdown(a, a["first_start"] - 1, a["first_start"] - 1 + wall),
        "rates": rr.rates(a, wall),
    }


def test_render_run(doc):
    text = "\n".join(rr.render_run("run 2/2", _run(doc)))
    assert text.startswith("=== run 2/2: wall 15.0 s, rc 0")
    assert "task executions (task x host): 23 run + 9 skipped, in 16 task entries" in text
    assert "changed tasks (4; NOT a no-op run):" in text
    assert "  h1  [-]  Always changed" in text
    assert "h1  [-]  Failed but ignored  (failed)" in text
    assert "ok=11" in text and "ignored=1" in text
    lines = text.splitlines()
    role_rows = lines[lines.index(next(x for x in lines if x.startswith("seconds per role"))) + 2 :][:2]
    assert [row.split()[0] for row in role_rows] == ["-", "tiny"]
    assert "Loop of copies  (copy; h1,h2, 6 items)" in text
    assert "all skipped" in text
    assert any(line.split()[:1] == ["copy"] for line in lines)


def test_render_run_of_a_noop_run():
    tasks = [
        _task(
            "t",
            "/r/roles/hub/tasks/main.yml:1",
            "2026-11-29T03:00:00Z",
            "2026-11-29T03:00:01Z",
            {"h": {"action": "ansible.builtin.stat"}},
        )
    ]
    stats = {
        "h": {
            "ok": 1,
            "changed": 0,
            "failures": 0,
            "skipped": 0,
            "unreachable": 0,
            "ignored": 0,
            "rescued": 0,
        }
    }
    text = "\n".join(rr.render_run("run 1/1", _run(_doc(tasks, stats), wall=2.0)))
    assert "changed tasks: none (recap: changed=0)" in text
    assert "failed/unreachable" not in text
    assert "  hub " in text


def test_render_summary(doc):
    runs = [_run(doc, 20.0), {"rc": 4, "wall": 3.0, "error": "no ansible.posix.json document in the output"}]
    text = "\n".join(rr.render_summary(runs))
    assert "=== summary" in text
    assert text.splitlines()[2].split() == [
        "1",
        "0",
        "20.0",
        f"{rr.analyse(doc)['task_seconds']:.1f}",
        "23",
        "9",
        "4",
    ]
    assert "(no JSON: no ansible.posix.json document in the output)" in text


# --- the header ------------------------------------------------------------------------------------


def test_mem_total():
    text = "MemTotal:       24613200 kB\nMemFree:         1000 kB\n"
    assert rr.mem_total(text) == 24613200 * 1024
    assert rr.mem_total("nothing\n") is None


DUMP = [
    {"name": "ANSIBLE_PIPELINING", "origin": "/repo/ansible.cfg", "value": True},
    {"name": "CONFIG_FILE", "origin": "", "value": "/repo/ansible.cfg"},
    {"name": "DEFAULT_FORKS", "origin": "default", "value": 5},
    {"name": "DEFAULT_GATHERING", "origin": "/repo/ansible.cfg", "value": "smart"},
]


def test_config_settings_from_the_dump_and_the_environment():
    s = rr.config_settings(DUMP, {})
    assert s == {
        "pipelining": "True (/repo/ansible.cfg)",
        "forks": "5 (default)",
        "gathering": "smart (/repo/ansible.cfg)",
        "config_file": "/repo/ansible.cfg",
    }
    assert (
        rr.config_settings(DUMP, {"ANSIBLE_PIPELINING": "False"})["pipelining"]
        == "False (env ANSIBLE_PIPELINING)"
    )
    assert rr.config_settings([], {})["pipelining"] == "?"


INVENTORY = {  # ansible-inventory -i A -i ssh-overlay.yml --list (ansible-core 2.19), trimmed
    "_meta": {
        "hostvars": {
            "mlw-site-default-cache": {"ansible_connection": "community.docker.docker"},
            "mlw-site-default-npu2": {"ansible_connection": "ssh", "ansible_ssh_host": "172.18.0.4"},
        },
        "profile": "inventory_legacy",
    },
    "all": {"children": ["ungrouped", "cache_proxy", "npu_servers"]},
    "cache_proxy": {"hosts": ["mlw-site-default-cache"]},
    "npu_servers": {"hosts": ["mlw-site-default-npu1", "mlw-site-default-npu2"]},
}


def test_inventory_hosts_and_connections():
    assert rr.inventory_hosts(INVENTORY) == [
        "mlw-site-default-cache",
        "mlw-site-default-npu1",
        "mlw-site-default-npu2",
    ]
    by_conn = rr.connections(INVENTORY)
    assert by_conn == {
        "community.docker.docker": ["mlw-site-default-cache"],
        "ssh (default)": ["mlw-site-default-npu1"],
        "ssh": ["mlw-site-default-npu2"],
    }
    assert rr.format_connections(by_conn).startswith("community.docker.docker: mlw-site-default-cache; ssh: ")


def test_child_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "")
    monkeypatch.delenv("ANSIBLE_CONFIG", raising=False)
    env = rr.child_env(str(tmp_path))
    assert "ANSIBLE_CALLBACKS_ENABLED" not in env
    assert env["ANSIBLE_CONFIG"] == str(ROOT / "ansible.cfg")
    assert env["ANSIBLE_CACHE_PLUGIN"] == "ansible.builtin.jsonfile"
    assert env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(tmp_path)
    assert env["ANSIBLE_CACHE_PLUGIN_TIMEOUT"] == "7200"
    monkeypatch.setenv("ANSIBLE_CONFIG", "/elsewhere/ansible.cfg")
    env = rr.child_env(None)
    assert env["ANSIBLE_CONFIG"] == "/elsewhere/ansible.cfg"
    assert "ANSIBLE_CACHE_PLUGIN" not in env


# --- SSH to lab containers -------------------------------------------------------------------------


def test_parse_ssh_targets():
    assert rr.parse_ssh_targets("mlw-site-default-npu2, mlw-site-default-cache") == [
        ("mlw-site-default-npu2", "mlw-site-default-npu2"),
        ("mlw-site-default-cache", "mlw-site-default-cache"),
    ]
    assert rr.parse_ssh_targets("lab-npu=npu1,") == [("lab-npu", "npu1")]
    with pytest.raises(ValueError):
        rr.parse_ssh_targets(" , ")


def test_container_ip_from_docker_inspect():
    inspect = [
        {
            "Name": "/mlw-site-default-npu2",
            "NetworkSettings": {
                "Networks": {
                    "none-like": {"IPAddress": ""},
                    "mlw-site-default-net": {"IPAddress": "172.18.0.4", "Gateway": "172.18.0.1"},
                    "other": {"IPAddress": "10.0.0.9"},
                }
            },
        }
    ]
    assert rr.container_ip(inspect) == "172.18.0.4"
    with pytest.raises(ValueError):
        rr.container_ip([{"Name": "/x", "NetworkSettings": {"Networks": {}}}])


def test_overlay_vars_pin_what_reads_ansible_host():
    v = rr.overlay_vars(
        "mlw-site-default-npu2",
        "172.18.0.4",
        "/tmp/k/id_ed25519",
        {"ansible_connection": "community.docker.docker"},
    )
    assert v["ansible_connection"] == "ssh"
    assert v["ansible_ssh_host"] == "172.18.0.4"
    assert "ansible_host" not in v  # hostvars[...]['ansible_host'] stays what the roles saw
    assert v["ansible_user"] == "root"
    assert v["ansible_ssh_private_key_file"] == "/tmp/k/id_ed25519"
    assert "ControlPersist=60s" in v["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=/dev/null" in v["ansible_ssh_common_args"]
    assert v["ansible_python_interpreter"] == "/usr/bin/python3"
    assert v["hub_ssh_host"] == "mlw-site-default-npu2"
    # set by the inventory or the playbook's vars: left alone
    assert "hub_ssh_host" not in rr.overlay_vars("h", "1.2.3.4", "k", {"hub_ssh_host": "lab.example"})
    # an inventory ansible_host keeps being ansible_host in every task: nothing to pin
    assert "hub_ssh_host" not in rr.overlay_vars("h", "1.2.3.4", "k", {"ansible_host": "10.0.0.1"})
    assert rr.overlay_vars("h", "1.2.3.4", "k", {"ansible_docker_host": "c1"})["hub_ssh_host"] == "c1"


def test_overlay_yaml_is_the_inventory_it_says():
    yaml = pytest.importorskip("yaml")
    hosts = {
        "mlw-site-default-npu2": rr.overlay_vars("mlw-site-default-npu2", "172.18.0.4", "/tmp/k/id", {}),
        "mlw-site-default-cache": rr.overlay_vars("mlw-site-default-cache", "172.18.0.2", "/tmp/k/id", {}),
    }
    assert yaml.safe_load(rr.overlay_yaml(hosts)) == {"all": {"hosts": hosts}}


# --- main(), the commands faked --------------------------------------------------------------------


class FakeCommands:
    """Stands in for subprocess.run: answers by the command's first words, records every call."""

    def __init__(self, stdout_of_playbook: str, inventory: dict):
        self.calls: list[tuple[list[str], dict]] = []
        self.playbook_stdout = stdout_of_playbook
        self.inventory = inventory

    def __call__(self, cmd, **kw):
        cmd = list(cmd)
        self.calls.append((cmd, kw))
        out, rc = "", 0
        if cmd[0] == "ansible-playbook":
            out = self.playbook_stdout
        elif cmd[0] == "ansible-inventory":
            out = json.dumps(self.inventory)
        elif cmd[:2] == ["ansible", "--version"]:
            out = "ansible [core 2.19.14]\n  config file = /repo/ansible.cfg\n"
        elif cmd[0] == "ansible-config":
            out = json.dumps(DUMP)
        elif cmd[0] == "ssh-keygen":
            key = pathlib.Path(cmd[cmd.index("-f") + 1])
            key.write_text("PRIVATE\n")
            key.with_suffix(".pub").write_text(f"ssh-ed25519 AAAA {cmd[cmd.index('-C') + 1]}\n")
        elif cmd[:2] == ["docker", "inspect"]:
            ip = {"mlw-site-default-npu2": "172.18.0.4", "mlw-site-default-cache": "172.18.0.2"}[cmd[2]]
            out = json.dumps([{"NetworkSettings": {"Networks": {"net": {"IPAddress": ip}}}}])
        elif cmd[:4] == ["docker", "exec", "mlw-site-default-cache", "test"]:
            rc = 1  # no sshd there yet
        return subprocess.CompletedProcess(cmd, rc, out, "")

    def of(self, prog):
        return [c for c in self.calls if c[0][0] == prog]


def test_main_runs_and_writes_json_and_logs(monkeypatch, tmp_path, capsys):
    fake = FakeCommands(FIXTURE.read_text(), INVENTORY)
    monkeypatch.setattr(rr, "run", fake)
    monkeypatch.setattr(rr.shutil, "which", lambda prog: f"/usr/bin/{prog}")
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "")
    inv = tmp_path / "inventory"
    inv.mkdir()
    out_json = tmp_path / "numbers.json"
    rc = rr.main(
        ["-i", str(inv), "--limit", "mlw-site-default-npu2", "-e", "a=1", "-e", "b=2", "--fact-cache", str(tmp_path / "facts"),
         "--json", str(out_json), "--save-logs", str(tmp_path / "logs"), "--connection-note", "docker exec"]
    )  # fmt: skip
    assert rc == 0
    plays = fake.of("ansible-playbook")
    assert len(plays) == 2
    cmd, kw = plays[0]
    assert cmd == [
        "ansible-playbook",
        "-i",
        str(inv),
        str(ROOT / "site.yml"),
        "--limit",
        "mlw-site-default-npu2",
        "-e",
        "a=1",
        "-e",
        "b=2",
    ]
    assert kw["cwd"] == rr.REPO
    assert kw["env"]["ANSIBLE_STDOUT_CALLBACK"] == "ansible.posix.json"
    assert "ANSIBLE_CALLBACKS_ENABLED" not in kw["env"]
    assert kw["env"]["ANSIBLE_CACHE_PLUGIN_CONNECTION"] == str(tmp_path / "facts")
    setup = [c for c, _ in fake.of("ansible") if "-m" in c]
    assert setup == [["ansible", "-i", str(inv), "all", "-m", "ansible.builtin.setup"]]
    assert fake.calls.index(
        next(c for c in fake.calls if c[0][0] == "ansible" and "-m" in c[0])
    ) < fake.calls.index(plays[0])
    numbers = json.loads(out_json.read_text())
    assert len(numbers["runs"]) == 2 and numbers["runs"][0]["analysis"]["executions"] == 23
    assert numbers["header"]["limit"] == "mlw-site-default-npu2"
    assert (tmp_path / "logs" / "run-2.json").read_text() == FIXTURE.read_text()
    text = capsys.readouterr().out
    assert "ansible: ansible [core 2.19.14]" in text
    assert "pipelining: True (/repo/ansible.cfg)" in text
    assert "docker exec" in text and "=== run 2/2" in text and "=== summary" in text


def test_main_reports_a_run_without_json(monkeypatch, tmp_path, capsys):
    fake = FakeCommands("ERROR! the playbook: nope.yml could not be found\n", INVENTORY)
    monkeypatch.setattr(rr, "run", fake)
    monkeypatch.setattr(rr.shutil, "which", lambda prog: f"/usr/bin/{prog}")
    assert rr.main(["-i", str(tmp_path), "--runs", "1"]) == 1
    assert "no ansible.posix.json document" in capsys.readouterr().out


def test_main_ssh_from_docker(monkeypatch, tmp_path, capsys):
    fake = FakeCommands(FIXTURE.read_text(), INVENTORY)
    monkeypatch.setattr(rr, "run", fake)
    monkeypatch.setattr(rr.shutil, "which", lambda prog: f"/usr/bin/{prog}")
    waited = []
    monkeypatch.setattr(rr, "_wait_port", lambda host, port, timeout: waited.append((host, port)))
    seen_overlay = {}

    def playbook_sees_overlay(cmd, **kw):
        if cmd[0] == "ansible-playbook":
            seen_overlay["text"] = pathlib.Path(cmd[4]).read_text()
        return fake(cmd, **kw)

    monkeypatch.setattr(rr, "run", playbook_sees_overlay)
    inv = tmp_path / "inventory"
    inv.mkdir()
    rc = rr.main(
        ["-i", str(inv), "--runs", "1", "--ssh-from-docker", "mlw-site-default-npu2,mlw-site-default-cache"]
    )
    assert rc == 0
    docker = [c for c, _ in fake.of("docker")]
    # sshd: present in npu2; installed in the cache host (no sshd there), then started in both
    assert ["docker", "exec", "mlw-site-default-npu2", "test", "-x", "/usr/sbin/sshd"] in docker
    install = [c for c in docker if "install" in c]
    assert len(install) == 1 and install[0][-2:] == ["--no-install-recommends", "openssh-server"]
    assert "mlw-site-default-cache" in install[0]
    assert [c[2] for c in docker if c[-3:] == ["enable", "--now", "ssh"]] == [
        "mlw-site-default-npu2",
        "mlw-site-default-cache",
    ]
    # the key: appended with its modes, then removed again by its comment
    auth = [(c, kw) for c, kw in fake.calls if c[:3] == ["docker", "exec", "-i"]]
    assert len(auth) == 2
    assert (
        "chmod 700 /root/.ssh" in auth[0][0][-1] and "chmod 600 /root/.ssh/authorized_keys" in auth[0][0][-1]
    )
    comment = auth[0][1]["input"].split()[-1]
    assert comment.startswith(rr.KEY_COMMENT_PREFIX)
    removed = [c for c in docker if c[3:5] == ["sed", "-i"]]
    assert [c[2] for c in removed] == ["mlw-site-default-npu2", "mlw-site-default-cache"]
    assert all(comment in c[5] for c in removed)
    assert waited == [("172.18.0.4", 22), ("172.18.0.2", 22)]
    # the overlay: a SECOND -i after the original inventory, the same host names, over SSH
    (cmd, _) = fake.of("ansible-playbook")[0]
    assert cmd[:3] == ["ansible-playbook", "-i", str(inv)]
    assert cmd[3] == "-i" and cmd[4].endswith("/ssh-overlay.yml")
    text = seen_overlay["text"]
    assert '"mlw-site-default-npu2":' in text and 'ansible_ssh_host: "172.18.0.4"' in text
    assert '"mlw-site-default-cache":' in text and 'ansible_ssh_host: "172.18.0.2"' in text
    assert 'ansible_connection: "ssh"' in text
    # the temporary key and overlay are gone afterwards
    assert not pathlib.Path(cmd[4]).exists()
    assert "SSH overlay from --ssh-from-docker" in capsys.readouterr().out


def test_ssh_from_docker_refuses_hosts_not_in_the_inventory(monkeypatch, tmp_path):
    fake = FakeCommands(FIXTURE.read_text(), INVENTORY)
    monkeypatch.setattr(rr, "run", fake)
    monkeypatch.setattr(rr.shutil, "which", lambda prog: f"/usr/bin/{prog}")
    with pytest.raises(SystemExit, match="not in the inventory: stranger"):
        rr.main(["-i", str(tmp_path), "--ssh-from-docker", "stranger"])
    assert not fake.of("docker") and not fake.of("ansible-playbook")
