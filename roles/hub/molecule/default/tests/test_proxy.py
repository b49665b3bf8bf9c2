"""configurable-http-proxy as its own systemd unit (issue 12, item 6: the proxy outlives the hub).

Runs after test_default.py (file order) and on its own: it starts alice's server itself and stops
it at the end. Checks the unit (own unprivileged user, hardened, public port on every address, API
on loopback only), that its token is in no command line and no file others can read, that a hub
restart keeps the proxy process and open connections through it (a terminal websocket and an
HTTP keep-alive connection to alice's server), that routes come back after the proxy restarted
alone, and the upgrade from the layout of earlier versions (the hub started the proxy itself, as
its child, as root): one run of the role converges it, a second run changes nothing.
"""

import base64
import json
import os
import pathlib
import subprocess
import time

CLIENT = "/opt/jupyterhub/venv/bin/python /root/hubclient.py"
UNIT = "configurable-http-proxy"
USER = "jupyterhub-proxy"
TOKEN_FILE = "/etc/jupyterhub/secrets/proxy_token"
HERE = pathlib.Path(__file__).resolve().parent
PROBE_DIR = "/root/proxy-probe"


def hub(host, *args):
    quoted = " ".join("'" + a.replace("'", "'\\''") + "'" for a in args)
    return json.loads(host.check_output(f"{CLIENT} {quoted}"))


def main_pid(host, unit):
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}").strip())


def routes(host):
    """The proxy's routing table, read from its API (token from the root-only file, in a header)."""
    code = (
        "import json, urllib.request\n"
        f"t = open('{TOKEN_FILE}').read().strip()\n"
        "r = urllib.request.Request('http://127.0.0.1:8001/api/routes', headers={'Authorization': 'token ' + t})\n"
        "print(urllib.request.urlopen(r, timeout=5).read().decode())\n"
    )
    return json.loads(host.check_output("python3 -c %s", code))


def proc_user(host, pid):
    return host.check_output(f"ps -o user:32= -p {pid}").strip()


def proxy_processes(host):
    """[(pid, user, systemd unit)] of every configurable-http-proxy process (the unit from the
    process's own cgroup: systemd's ControlGroup path need not exist under /sys/fs/cgroup here)."""
    out = host.run(
        "for p in $(pgrep -f '[c]onfigurable-http-proxy'); do "
        "echo \"$p $(ps -o user:32= -p $p) $(tail -n 1 /proc/$p/cgroup | sed 's#.*/##')\"; done"
    ).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # noqa: BLE001, S110 - retried until the deadline
            pass
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout} s")


def hub_answers(host):
    r = host.run(f"{CLIENT} api GET /hub/api/")
    return r.rc == 0 and json.loads(r.stdout)["status"] == 200


def alice_answers(host):
    return hub(host, "api", "GET", "/user/alice/api/status")["status"] == 200


def start_alice(host):
    wait(
        lambda: not hub(host, "api", "GET", "/hub/api/users/alice")["json"]["servers"],
        90,
        "alice's server stopped",
    )
    out = hub(host, "api", "POST", "/hub/api/users/alice/server")
    assert out["status"] in (201, 202), out
    wait(
        lambda: hub(host, "api", "GET", "/hub/api/users/alice")["json"]["servers"].get("", {}).get("ready"),
        90,
        "alice's server was not ready",
    )
    wait(lambda: alice_answers(host), 30, "alice's server did not answer through the proxy")


def test_proxy_unit_runs_as_its_own_user(host):
    svc = host.service(UNIT)
    assert svc.is_running and svc.is_enabled
    props = svc.systemd_properties
    assert props["User"] == USER and props["Restart"] == "always"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectControlGroups": "yes",
        "RestrictSUIDSGID": "yes",
    }.items():
        assert props[key] == value, (key, props[key])
    assert props.get("CapabilityBoundingSet", "") == ""  # no capability at all
    pid = main_pid(host, UNIT)
    assert proc_user(host, pid) == USER
    assert "configurable-http-proxy" in host.file(f"/proc/{pid}/cmdline").content_string
    user = host.user(USER)
    assert user.exists and user.uid < 1000 and user.shell.endswith("nologin")
    assert user.group == USER
    # the hub starts it first but is not bound to it: nothing restarts the proxy with the hub
    hub_unit = host.service("jupyterhub").systemd_properties
    assert f"{UNIT}.service" in hub_unit["Wants"] and f"{UNIT}.service" in hub_unit["After"]
    for dep in ("Requires", "BindsTo", "PartOf"):
        assert f"{UNIT}.service" not in hub_unit.get(dep, ""), dep
    for dep in ("Requires", "BindsTo", "PartOf", "Wants", "After"):
        assert "jupyterhub.service" not in props.get(dep, ""), dep
    # the only proxy is the unit's: the hub does not run one of its own
    assert proxy_processes(host) == [(str(pid), USER, f"{UNIT}.service")]


def test_proxy_listens_public_and_api_on_loopback(host):
    assert host.socket("tcp://0.0.0.0:28000").is_listening
    assert host.socket("tcp://127.0.0.1:8001").is_listening
    assert not host.socket("tcp://0.0.0.0:8001").is_listening
    ss = host.check_output("ss -Htlnp")
    api = [line for line in ss.splitlines() if ":8001 " in line]
    assert len(api) == 1 and "127.0.0.1:8001" in api[0], api
    assert f"pid={main_pid(host, UNIT)}," in api[0]
    # the API refuses requests without the token
    code = host.check_output(
        'python3 -c "import urllib.request, urllib.error\n'
        "try: urllib.request.urlopen('http://127.0.0.1:8001/api/routes', timeout=5)\n"
        'except urllib.error.HTTPError as e: print(e.code)"'
    )
    assert code.strip() == "403"


def test_proxy_token_not_exposed(host):
    token = host.file(TOKEN_FILE).content_string.strip()
    assert len(token) >= 32
    pid = main_pid(host, UNIT)
    # no command line holds it (as root, every process's arguments)
    assert token not in host.check_output("ps -eo args --no-headers -ww")
    # other users see no process environment (ps e) and cannot read the proxy's
    assert token not in host.check_output("runuser -u nobody -- ps axeww")
    assert host.run(f"runuser -u nobody -- cat /proc/{pid}/environ").rc != 0
    # the proxy has it (in its environment, from the root-only environment file)
    assert f"CONFIGPROXY_AUTH_TOKEN={token}".encode() in host.file(f"/proc/{pid}/environ").content
    env_file = host.file("/etc/jupyterhub/secrets/proxy.env")
    assert env_file.mode == 0o600 and env_file.user == "root" and env_file.group == "root"
    assert host.file("/etc/jupyterhub/secrets").mode == 0o700
    # systemd shows only the file's name, not its content
    assert token not in host.check_output(f"systemctl show {UNIT}")
    assert token not in host.file(f"/etc/systemd/system/{UNIT}.service").content_string
    # no file another user can read holds it: grep as nobody, the token given on stdin (-f -)
    grep = f"grep -rlsF -f - {{dirs}} < {TOKEN_FILE}"
    as_root = host.run(grep.format(dirs="/etc/jupyterhub")).stdout.split()
    assert sorted(as_root) == [  # the search works: root finds the two root-only files
        "/etc/jupyterhub/secrets/proxy.env",
        "/etc/jupyterhub/secrets/proxy_token",
    ], as_root
    found = host.run("runuser -u nobody -- " + grep.format(dirs="/etc /opt /srv /var /run /tmp /root /home"))
    assert found.stdout.strip() == "", found.stdout
    # nor the journal lines of the proxy and the hub
    assert token not in host.check_output(f"journalctl -u {UNIT} -u jupyterhub --no-pager -o cat")


def test_hub_restart_keeps_proxy_and_open_connections(host):
    start_alice(host)
    probe = base64.b64encode((HERE.parent / "files" / "proxy_probe.py").read_bytes()).decode()
    host.check_output(f"rm -rf {PROBE_DIR} && mkdir -p {PROBE_DIR}")
    host.check_output(f"echo {probe} | base64 -d > {PROBE_DIR}/probe.py")
    host.check_output(
        f"systemd-run --unit mlw-proxy-probe --collect -p StandardOutput=file:{PROBE_DIR}/log "
        f"-p StandardError=file:{PROBE_DIR}/log /opt/jupyterhub/venv/bin/python {PROBE_DIR}/probe.py alice {PROBE_DIR}"
    )
    wait(
        lambda: host.file(f"{PROBE_DIR}/ready").exists or host.file(f"{PROBE_DIR}/result.json").exists,
        60,
        "the probe did not open its connections",
    )
    assert host.file(f"{PROBE_DIR}/ready").exists, host.file(f"{PROBE_DIR}/result.json").content_string
    routes_before = set(routes(host))
    assert "/user/alice" in routes_before, routes_before
    proxy_pid, hub_pid = main_pid(host, UNIT), main_pid(host, "jupyterhub")

    host.check_output("systemctl restart jupyterhub")
    wait(lambda: hub_answers(host), 120, "the hub API did not answer after its restart")
    time.sleep(3)  # a few more requests on the open HTTP connection with the new hub running
    host.check_output(f"touch {PROBE_DIR}/go")
    wait(lambda: host.file(f"{PROBE_DIR}/result.json").exists, 60, "the probe did not finish")
    result = json.loads(host.file(f"{PROBE_DIR}/result.json").content_string)

    assert main_pid(host, "jupyterhub") != hub_pid, "the hub did not restart"
    assert main_pid(host, UNIT) == proxy_pid, "the proxy restarted with the hub"
    assert result["errors"] == [], result
    assert result["ws_after"] and result["same_socket"], result
    assert len(result["http"]) >= 5 and set(result["http"]) == {200}, result
    assert set(routes(host)) >= routes_before
    assert alice_answers(host)


def test_routes_restored_after_the_proxy_restarted_alone(host):
    hub_pid, proxy_pid = main_pid(host, "jupyterhub"), main_pid(host, UNIT)
    host.check_output(f"systemctl restart {UNIT}")  # a new proxy starts with the default route only
    assert main_pid(host, UNIT) != proxy_pid
    # the hub is reachable through the new proxy at once (its default target) ...
    wait(lambda: hub_answers(host), 10, "the hub was not reachable through the restarted proxy")
    # ... and puts the routes back within hub_proxy_route_check_interval (20 s)
    wait(lambda: "/user/alice" in routes(host), 45, "the hub did not put alice's route back")
    assert alice_answers(host)
    assert main_pid(host, "jupyterhub") == hub_pid


def _playbook(name):
    """Run one of this scenario's playbooks against the instance; (rc, changed tasks, log)."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_FORCE_COLOR="0",
    )
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)  # stdout must be the JSON alone (the harness's timers)
    p = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(HERE.parent / name)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    log = os.path.join(os.environ.get("MLW_ARTIFACTS_DIR", "/tmp"), f"hub-{name}.json")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "w") as f:
        f.write(p.stdout + "\n" + p.stderr)
    changed, failed = [], []
    try:
        data = json.loads(p.stdout)
    except json.JSONDecodeError as err:
        raise AssertionError(f"no JSON from ansible-playbook {name} (rc {p.returncode}); see {log}") from err
    for play in data["plays"]:
        for task in play["tasks"]:
            for res in task["hosts"].values():
                if res.get("changed"):
                    changed.append(f"{play['play']['name']}: {task['task']['name']}")
                if res.get("failed") and not res.get("ignore_errors"):
                    failed.append(f"{task['task']['name']}: {res.get('msg', '')}")
    assert p.returncode == 0 and not failed, f"{name} failed (see {log}): {failed}"
    return changed, log


def test_upgrade_from_the_proxy_the_hub_started(host):
    # proxy-upgrade.yml: the earlier layout (asserted there), then the hub role as it is now
    changed, log = _playbook("proxy-upgrade.yml")
    assert any("Write the proxy's systemd unit" in c for c in changed), (changed, log)
    pid = main_pid(host, UNIT)
    assert pid and proc_user(host, pid) == USER
    ss = host.check_output("ss -Htlnp")
    public = [line for line in ss.splitlines() if ":28000 " in line]
    assert public and all(f"pid={pid}," in line for line in public), public
    assert proxy_processes(host) == [(str(pid), USER, f"{UNIT}.service")]
    assert not host.file("/var/lib/jupyterhub/jupyterhub-proxy.pid").exists
    assert not host.file("/etc/jupyterhub/jupyterhub_config.d/40-earlier-layout.py").exists
    wait(lambda: alice_answers(host), 60, "alice's server did not answer through the new proxy")
    # converged: the same role again changes nothing and keeps the proxy process
    again, log = _playbook("proxy-rerun.yml")
    assert again == [], (again, log)
    assert main_pid(host, UNIT) == pid


def test_cleanup(host):
    hub(host, "api", "DELETE", "/hub/api/users/alice/server")
