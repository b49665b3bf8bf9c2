"""The tenant boundary, attacked (README "Threat model"; issue 12).

Each test is one named attack; it records `refused: <how>` or `NOT REFUSED: <what happened>`,
and the run ends with `N attacks tried, N refused` (tests/conftest.py). The attackers:

  container  mallory, an approved student of npu1, inside her own running server: root there
             (as over SSH), her server's hub token in the environment, the cache settings
  account    mallory's hub account from her laptop (the control node): her password, a token
             she made herself, her own start options
  network    another machine on the classroom network: the cache instance, or npu2 towards npu1
  browser    Chromium, as mallory or as a stranger

Where the network refuses, a control shows the target answers from a place that may reach it
(the NPU server itself, the cache host), so a target that is merely down cannot pass for a
refusal. Targets the suite adds for that are removed at the end (a listener on npu1 and on the
cache host, a metadata address on the cache host, routes).

Leaves behind: mallory (approved, server stopped), a pending sign-up `pending1`, the re-created
`reuse` (pending) and the first reuse's archived work; alice's and bob's servers (test_10) keep
running, with their NPUs, SSH ports and accounts as before (the last test checks).
"""

import base64
import functools
import json
import re
import shlex
import textwrap
import threading
import time

import pytest
import requests
from conftest import ARTIFACTS, CA_FILE, PORTS, PREFIX, base_url, instance, login, record_attack
from sitehub import DB, STATE, WORK, Hub

PASSWORD = "Attack-suite-2026!"
GATEWAY = "172.31.240.1"  # hub_docker_network_gateway (default)
PROBE_PORT = 9099  # a "host service" the suite starts on npu1 and on the cache host
METADATA = "169.254.169.254"

testinfra_hosts = [f"ansible://{PREFIX}-npu1"]  # the suite drives every instance itself


# --- code run on the instances and in mallory's container ---------------------------------------
PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=4).close()
    print("open")
except ConnectionRefusedError:
    print("refused (connection refused)")
except OSError as e:
    print("blocked (" + (str(e) or type(e).__name__) + ")")
"""

HTTP = """
import sys, urllib.error, urllib.request
method, url, proxy, body, auth = (sys.argv[1:] + [""] * 5)[:5]
op = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy} if proxy else {}))
headers = {"Content-Type": "application/json", "Accept": "application/json"}
if auth == "hub":
    import os
    headers["Authorization"] = "token " + os.environ["JUPYTERHUB_API_TOKEN"]
    url = os.environ["JUPYTERHUB_API_URL"].rstrip("/") + url
req = urllib.request.Request(url, method=method, data=body.encode() if body else None, headers=headers)
try:
    r = op.open(req, timeout=15)
    print(r.status, r.read(600).decode(errors="replace").replace(chr(10), " "))
except urllib.error.HTTPError as e:
    print(e.code, e.read(600).decode(errors="replace").replace(chr(10), " "))
except OSError as e:
    print("000", e)
"""

FORMS = """
import http.cookiejar, json, sys, urllib.error, urllib.parse, urllib.request
base, action, user, password, n = sys.argv[1:6]
out = []
for _ in range(int(n)):
    jar = http.cookiejar.CookieJar()
    op = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    op.open(base + "/hub/" + action, timeout=30).read()
    xsrf = next((c.value for c in jar if c.name == "_xsrf"), "")
    data = {"username": user, "password": password, "_xsrf": xsrf}
    try:
        r = op.open(base + "/hub/" + action, urllib.parse.urlencode(data).encode(), timeout=30)
        out.append([r.status, urllib.parse.urlparse(r.geturl()).path])
    except urllib.error.HTTPError as e:
        out.append([e.code, ""])
print(json.dumps(out))
"""


def py(host, code, *args, container=None):
    """Run Python code on an instance, or as root in a container on it; stdout, stripped."""
    b64 = base64.b64encode(textwrap.dedent(code).encode()).decode()
    cmd = f"python3 -c \"import base64; exec(base64.b64decode('{b64}'))\" " + " ".join(
        shlex.quote(str(a)) for a in args
    )
    if container:
        cmd = f"docker exec -u 0 {container} {cmd}"
    r = host.run(cmd)
    assert r.rc == 0, f"the attack could not run: {r.stderr.strip()[-300:]}"  # no container, no python...
    return r.stdout.strip()


def probe(host, ip, port, container=None):
    return py(host, PROBE, ip, port, container=container)


def http(host, method, url, proxy="", body="", container=None, auth=""):
    out = py(host, HTTP, method, url, proxy, body, auth, container=container)
    code, _, text = out.partition(" ")
    return int(code) if code.isdigit() else 0, text


def attack(origin, name):
    """The attack's body raises when the attack succeeds; else it returns how it was refused."""

    def wrap(fn):
        @functools.wraps(fn)  # pytest reads the fixtures from the wrapped signature
        def test(*args, **kwargs):
            try:
                how = fn(*args, **kwargs)
            except BaseException as e:
                record_attack(
                    origin,
                    name,
                    f"NOT REFUSED: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}",
                )
                raise
            record_attack(origin, name, "refused: " + " ".join(str(how).split()))

        return test

    return wrap


# --- the scene ------------------------------------------------------------------------------------
def eth0(host):
    return host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1").strip()


def container_ip(host, name):
    return host.check_output(
        "docker inspect -f '{{(index .NetworkSettings.Networks \"ml-workshop\").IPAddress}}' " + name
    ).strip()


class Scene:
    def __init__(self):
        self.npu1, self.npu2, self.cache = instance("npu1"), instance("npu2"), instance("cache")
        self.hub, self.hub2 = Hub("npu1"), Hub("npu2")
        self.npu1_ip, self.cache_ip = eth0(self.npu1), eth0(self.cache)
        self.alice_ip = container_ip(self.npu1, "ml-workshop-user-alice")
        self.mallory = "ml-workshop-user-mallory"
        self.before = self.guarded()
        self.token = ""

    def guarded(self):
        """What the attacks must not change: alice's and bob's accounts, ports, NPUs, servers."""
        out = {}
        for server, hub, user in (("npu1", self.hub, "alice"), ("npu2", self.hub2, "bob")):
            snap = hub.snapshot()
            rows = [r for r in snap["accounts"].splitlines() if r.split("|")[0] in (user, "superuser")]
            out[server] = {
                "accounts": rows,
                "ssh_port": snap["ssh_ports"].get(user),
                "npus": snap["npus"].get(user),
                "running": snap["running"].get(user),
            }
        return out


@pytest.fixture(scope="module")
def scene():
    s = Scene()
    # Targets for the network controls: a service on the NPU server and on the cache host...
    for h in (s.npu1, s.cache):
        h.check_output(
            f"mkdir -p /tmp/mlw-empty && setsid -f python3 -m http.server {PROBE_PORT} --bind 0.0.0.0 --directory /tmp/mlw-empty "
            f">/dev/null 2>&1; echo started"
        )
    # ...and a metadata service: 169.254.169.254 on the cache host, routed to it from npu1, as a
    # cloud's metadata address is reached through the server's network.
    s.cache.check_output(f"ip addr add {METADATA}/32 dev lo 2>/dev/null || true")
    s.cache.check_output(
        f"mkdir -p /tmp/mlw-empty && setsid -f python3 -m http.server 80 --bind {METADATA} --directory /tmp/mlw-empty >/dev/null 2>&1; echo ok"
    )
    s.npu1.check_output(f"ip route replace {METADATA}/32 via {s.cache_ip}")
    yield s
    for h in (s.npu1, s.cache):
        h.run("pkill -f 'python3 -m http.server' || true")
    s.cache.run(f"ip addr del {METADATA}/32 dev lo")
    s.npu1.run(f"ip route del {METADATA}/32")
    s.cache.run("ip route del 172.31.240.0/24")
    s.npu1.run(f"rm -f {WORK}/alice/attack-canary.txt")


def own_token(hub, user, password):
    """The token a student makes on her /hub/token page (cookie session + XSRF header)."""
    s, _ = hub.login(user, password)
    r = s.post(
        f"{hub.base}/hub/api/users/{user}/tokens",
        headers={"X-XSRFToken": s.cookies.get("_xsrf", "")},
        json={"note": "mallory's own"},
    )
    assert r.status_code in (200, 201), f"{user} could not make her own token: {r.status_code} {r.text[:200]}"
    return r.json()["token"]


def as_token(hub, token, method, path, **kw):
    return requests.request(
        method, f"{hub.base}{path}", headers={"Authorization": f"token {token}"}, timeout=30, **kw
    )


def is_admin(host, user):
    return host.check_output(f"sqlite3 {DB} \"select admin from users where name='{user}'\"").strip() == "1"


def npus_of(host, container):
    info = json.loads(host.check_output(f"docker inspect {container}"))[0]
    return sorted(
        int(d["PathOnHost"].removeprefix("/dev/davinci"))
        for d in info["HostConfig"]["Devices"]
        if re.fullmatch(r"/dev/davinci\d+", d["PathOnHost"])
    )


# --- helpers of the account and network attacks --------------------------------------------------------------------------------------
def signup_text(hub, user, password="Take-over-2026!"):
    return hub.signup(user, password).text


def users_info(hub):
    return set(
        hub.host.check_output(
            "sqlite3 /var/lib/jupyterhub/jupyterhub.sqlite 'select username from users_info'"
        ).split()
    )


# --- account: the race first (it starts the attacker's server) ------------------------------------
@attack("account", "two overlapping starts under `exclusive` take the same NPU")
def test_01_overlapping_starts_share_no_npu(scene):
    hub = scene.hub
    for user in ("mallory", "reuse"):
        hub.signup_and_approve(user, PASSWORD)
        if hub.api("GET", f"/users/{user}").status_code == 404:  # the hub's user: made at first login
            hub.api("POST", f"/users/{user}")
    # Both starts are sent at once (two threads), as two students pressing Start together.
    statuses = {}

    def start(user):
        statuses[user] = hub.api("POST", f"/users/{user}/server").status_code

    threads = [threading.Thread(target=start, args=(u,)) for u in ("mallory", "reuse")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(c in (201, 202) for c in statuses.values()), statuses
    for user in ("mallory", "reuse"):
        hub.start(user)  # waits until ready (a start already under way answers 400)
    m = npus_of(scene.npu1, "ml-workshop-user-mallory")
    r = npus_of(scene.npu1, "ml-workshop-user-reuse")
    a = npus_of(scene.npu1, "ml-workshop-user-alice")
    assert len(m) == 1 and len(r) == 1, (m, r)
    assert not (set(m) & set(r)) and not (set(m + r) & set(a)), f"mallory {m}, reuse {r}, alice {a}"
    state = json.loads(scene.npu1.file(STATE).content_string)
    assert state["npus"]["mallory"] == m and state["npus"]["reuse"] == r, state["npus"]
    scene.token = own_token(hub, "mallory", PASSWORD)
    return f"both started at once got different NPUs (mallory {m}, reuse {r}, alice {a})"


# --- container ------------------------------------------------------------------------------------
@attack("container", "connect to another student's sshd directly (container to container, port 22)")
def test_02_neighbour_sshd(scene):
    assert probe(scene.npu1, scene.alice_ip, 22) == "open", "control: alice's sshd answers the server"
    out = probe(scene.npu1, scene.alice_ip, 22, container=scene.mallory)
    assert out != "open", out
    return f"{scene.alice_ip}:22 {out} (open from the NPU server)"


@attack("container", "connect to another student's Jupyter server directly (port 8888, no proxy)")
def test_03_neighbour_jupyter(scene):
    assert probe(scene.npu1, scene.alice_ip, 8888) == "open", "control: alice's server answers the hub's host"
    out = probe(scene.npu1, scene.alice_ip, 8888, container=scene.mallory)
    assert out != "open", out
    return f"{scene.alice_ip}:8888 {out}"


@attack("container", "reach a service of the NPU server through the network gateway")
def test_04_host_service_via_gateway(scene):
    assert probe(scene.cache, scene.npu1_ip, PROBE_PORT) == "open", "control: the service answers the network"
    out = probe(scene.npu1, GATEWAY, PROBE_PORT, container=scene.mallory)
    assert out != "open", out
    return f"{GATEWAY}:{PROBE_PORT} {out} (open from the cache host)"


@attack("container", "reach a service of the NPU server through its classroom address")
def test_05_host_service_via_lan_address(scene):
    out = probe(scene.npu1, scene.npu1_ip, PROBE_PORT, container=scene.mallory)
    assert out != "open", out
    return f"{scene.npu1_ip}:{PROBE_PORT} {out}"


@attack("container", "reach the hub's public port through the gateway, around the classroom network")
def test_06_public_port_via_gateway(scene):
    assert probe(scene.cache, scene.npu1_ip, 28000) == "open", "control: the public port answers the network"
    out = probe(scene.npu1, GATEWAY, 28000, container=scene.mallory)
    assert out != "open", out
    return f"{GATEWAY}:28000 {out}"


@attack("container", "reach the proxy's routing API (8001) on the NPU server")
def test_07_proxy_api(scene):
    outs = [probe(scene.npu1, ip, 8001, container=scene.mallory) for ip in (GATEWAY, scene.npu1_ip)]
    assert "open" not in outs, outs
    return f"gateway and classroom address: {outs}"


@attack("container", "read the cloud metadata address (169.254.169.254) through the server's network")
def test_08_metadata(scene):
    code, _ = http(scene.npu1, "GET", f"http://{METADATA}/")
    assert code == 200, "control: the metadata address answers the NPU server"
    out = probe(scene.npu1, METADATA, 80, container=scene.mallory)
    assert out != "open", out
    return f"{METADATA}:80 {out} (200 from the NPU server)"


@attack("container", "reach a port of the cache host other than its three caches")
def test_09_cache_host_other_port(scene):
    assert probe(scene.npu1, scene.cache_ip, PROBE_PORT) == "open", "control: it answers the NPU server"
    assert probe(scene.npu1, scene.cache_ip, 3141, container=scene.mallory) == "open", (
        "control: devpi answers"
    )
    out = probe(scene.npu1, scene.cache_ip, PROBE_PORT, container=scene.mallory)
    assert out != "open", out
    return f"{scene.cache_ip}:{PROBE_PORT} {out} (devpi on 3141 open)"


@attack("container", "list every user with the server's own hub token")
def test_10_token_lists_users(scene):
    code, text = http(scene.npu1, "GET", "/users", container=scene.mallory, auth="hub")
    assert code in (403, 404) and "alice" not in text, (code, text[:200])
    return f"HTTP {code}"


@attack("container", "start another student's server with the server's own hub token")
def test_11_token_starts_alice(scene):
    code, text = http(scene.npu1, "POST", "/users/alice/server", container=scene.mallory, auth="hub")
    assert code in (403, 404), (code, text[:200])
    return f"HTTP {code}"


@attack("container", "make herself an admin with the server's own hub token")
def test_12_token_self_admin(scene):
    code, text = http(
        scene.npu1, "PATCH", "/users/mallory", body='{"admin": true}', container=scene.mallory, auth="hub"
    )
    assert code in (403, 404), (code, text[:200])
    assert not is_admin(scene.npu1, "mallory")
    return f"HTTP {code}; still not admin"


@attack("container", "read another student's work from inside her own server")
def test_13_neighbour_work(scene):
    canary = f"canary-{time.time_ns()}"
    scene.npu1.check_output(f"echo {canary} > {WORK}/alice/attack-canary.txt")
    mounts = scene.npu1.check_output(f"docker exec {scene.mallory} cat /proc/self/mountinfo")
    assert "/alice" not in mounts, "alice's work is mounted in mallory's server"
    found = scene.npu1.run(
        f"docker exec -u 0 {scene.mallory} sh -c "
        "'find / \\( -path /proc -o -path /sys \\) -prune -o -name attack-canary.txt -print 2>/dev/null'"
    ).stdout
    assert not found.strip(), found
    return "not mounted, not found anywhere in her container"


@attack("container", "drive the NPU server's Docker engine through its socket")
def test_14_docker_socket(scene):
    r = scene.npu1.run(
        f"docker exec -u 0 {scene.mallory} sh -c 'for p in /var/run/docker.sock /run/docker.sock; "
        "do [ -e $p ] && echo $p; done; find / -xdev -name docker.sock 2>/dev/null; true'"
    )
    assert r.rc == 0 and not r.stdout.strip(), (r.rc, r.stdout)
    assert "DOCKER_HOST" not in scene.npu1.check_output(f"docker exec {scene.mallory} env")
    return "no Docker socket in the container, no DOCKER_HOST"


@attack("container", "open a raw socket (spoof packets, ARP, sniff neighbours)")
def test_15_raw_socket(scene):
    out = py(
        scene.npu1,
        "import socket\ntry:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print('opened')\n"
        "except PermissionError as e:\n    print('EPERM', e)",
        container=scene.mallory,
    )
    assert out.startswith("EPERM"), out
    return "EPERM (no NET_RAW)"


@attack("container", "reconfigure the network interface (take another address, go promiscuous)")
def test_16_net_admin(scene):
    out = py(
        scene.npu1,
        """
        import fcntl, socket, struct
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"eth0", 0))[:18])[1]
        try:
            fcntl.ioctl(s, 0x8914, struct.pack("16sH", b"eth0", flags | 0x100))  # SIOCSIFFLAGS, IFF_PROMISC
            print("changed")
        except PermissionError as e:
            print("EPERM", e)
        """,
        container=scene.mallory,
    )
    assert out.startswith("EPERM"), out
    return "EPERM (no NET_ADMIN)"


@attack("container", "create the device node of another student's NPU")
def test_17_mknod_npu(scene):
    mine = npus_of(scene.npu1, scene.mallory)[0]
    theirs = npus_of(scene.npu1, "ml-workshop-user-alice")[0]
    major = scene.npu1.check_output(f"docker exec {scene.mallory} stat -c %t /dev/davinci{mine}").strip()
    listed = scene.npu1.check_output(
        f"docker exec {scene.mallory} sh -c 'ls /dev | grep -E \"^davinci[0-9]+$\"'"
    ).split()
    assert listed == [f"davinci{mine}"], listed
    r = scene.npu1.run(
        f"docker exec -u 0 {scene.mallory} sh -c "
        f"'mknod /tmp/npu c $((0x{major})) {theirs} && head -c1 /tmp/npu'"
    )
    assert r.rc != 0, r.stdout
    return f"sees only davinci{mine}; mknod for NPU {theirs}: {r.stderr.strip()[:80]}"


@attack("container", "mount a filesystem (reach the host's disks)")
def test_18_mount(scene):
    r = scene.npu1.run(
        f"docker exec -u 0 {scene.mallory} sh -c 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m'"
    )
    assert r.rc != 0, r.stdout
    return (r.stderr.strip() or "mount failed")[:100]


@attack("container", "change the workshop content everyone reads")
def test_19_write_content(scene):
    r = scene.npu1.run(f"docker exec -u 0 {scene.mallory} touch /home/student/workshop/defaced.txt")
    assert r.rc != 0, "content is writable"
    assert not scene.npu1.file("/srv/ml-workshop/workshop-content/defaced.txt").exists
    return (r.stderr.strip() or "read-only")[:100]


@attack("container", "use whistle to reach the cache host's own loopback services")
def test_20_whistle_to_loopback(scene):
    proxy = f"http://{scene.cache_ip}:8899"
    code, text = http(scene.npu1, "GET", "http://127.0.0.1:3141/+api", proxy=proxy, container=scene.mallory)
    assert code != 200 and "login" not in text, (code, text[:200])
    return f"HTTP {code}"


@attack("container", "use whistle to reach the metadata address")
def test_21_whistle_to_metadata(scene):
    proxy = f"http://{scene.cache_ip}:8899"
    code, text = http(scene.npu1, "GET", f"http://{METADATA}/", proxy=proxy, container=scene.mallory)
    assert code != 200, (code, text[:200])
    return f"HTTP {code}"


@attack("container", "create a devpi user anonymously (to publish packages students trust)")
def test_22_devpi_user(scene):
    url = f"http://{scene.cache_ip}:3141/mallory"
    code, text = http(scene.npu1, "PUT", url, body='{"password": "x-1234567"}', container=scene.mallory)
    assert code in (401, 403), (code, text[:200])
    assert http(scene.npu1, "GET", url)[0] == 404, "the user exists"
    return f"HTTP {code}"


@attack("container", "create an index under devpi's root user")
def test_23_devpi_index(scene):
    url = f"http://{scene.cache_ip}:3141/root/evil"
    code, text = http(scene.npu1, "PUT", url, body='{"bases": []}', container=scene.mallory)
    assert code in (401, 403), (code, text[:200])
    assert http(scene.npu1, "GET", url)[0] == 404, "the index exists"
    return f"HTTP {code}"


@attack("container", "use apt-cacher-ng as a proxy to the cache host's loopback")
def test_24_acng_to_loopback(scene):
    proxy = f"http://{scene.cache_ip}:3142"
    code, text = http(scene.npu1, "GET", "http://127.0.0.1:3141/+api", proxy=proxy, container=scene.mallory)
    assert code != 200 or "login" not in text, (code, text[:200])
    return f"HTTP {code}"


# --- account --------------------------------------------------------------------------------------
@attack("account", "open another student's server with her own token")
def test_25_open_alice_server(scene):
    r = as_token(scene.hub, scene.token, "GET", "/user/alice/api/contents", allow_redirects=False)
    assert r.status_code in (302, 403, 404) and '"content"' not in r.text, (r.status_code, r.text[:200])
    return f"HTTP {r.status_code}"


@attack("account", "list every user with her own token")
def test_26_list_users(scene):
    r = as_token(scene.hub, scene.token, "GET", "/hub/api/users")
    assert r.status_code in (403, 404) and "alice" not in r.text, (r.status_code, r.text[:200])
    return f"HTTP {r.status_code}"


@attack("account", "stop another student's server with her own token")
def test_27_stop_alice(scene):
    r = as_token(scene.hub, scene.token, "DELETE", "/hub/api/users/alice/server")
    assert r.status_code in (403, 404), (r.status_code, r.text[:200])
    assert scene.hub.server_state("alice"), "alice's server is gone"
    return f"HTTP {r.status_code}; alice's server runs"


@attack("account", "make herself an admin")
def test_28_self_admin(scene):
    r = as_token(scene.hub, scene.token, "PATCH", "/hub/api/users/mallory", json={"admin": True})
    assert r.status_code in (403, 404), (r.status_code, r.text[:200])
    assert not is_admin(scene.npu1, "mallory")
    return f"HTTP {r.status_code}; still not admin"


@attack("account", "mint a token with admin scopes")
def test_29_admin_token(scene):
    r = as_token(
        scene.hub,
        scene.token,
        "POST",
        "/hub/api/users/mallory/tokens",
        json={"scopes": ["admin:users", "admin:servers"]},
    )
    assert r.status_code in (400, 403), (r.status_code, r.text[:200])
    return f"HTTP {r.status_code}"


@attack("account", "ask for every NPU, another image and more memory in her start options")
def test_30_start_options(scene):
    hub = scene.hub
    hub.api("DELETE", "/users/mallory/server")
    hub.wait_stopped("mallory")
    path = "/hub/api/users/mallory/server"
    image = as_token(hub, scene.token, "POST", path, json={"image": "ml-workshop-hcie:latest"})
    assert image.status_code == 400 and not hub.server_state("mallory"), (image.status_code, image.text[:200])
    r = as_token(
        hub, scene.token, "POST", path, json={"npu_ids": list(range(8)), "npus": "all", "mem_limit": "64G"}
    )
    assert r.status_code in (201, 202), (r.status_code, r.text[:200])
    hub.start("mallory")
    info = json.loads(scene.npu1.check_output(f"docker inspect {scene.mallory}"))[0]
    npus = npus_of(scene.npu1, scene.mallory)
    assert len(npus) == 1, npus
    assert "hcie" not in info["Config"]["Image"], info["Config"]["Image"]
    assert info["HostConfig"]["Memory"] == 1024**3, info["HostConfig"]["Memory"]
    return f"image: HTTP 400; NPUs and memory ignored: 1 NPU {npus}, 1G"


@attack("account", "start a second (named) server to hold more NPUs")
def test_31_named_server(scene):
    r = as_token(scene.hub, scene.token, "POST", "/hub/api/users/mallory/servers/second")
    assert r.status_code in (400, 403, 404), (r.status_code, r.text[:200])
    return f"HTTP {r.status_code}"


@attack("account", "approve a pending sign-up herself")
def test_32_self_approve(scene):
    hub = scene.hub
    assert "sent to the admin" in signup_text(hub, "pending1", PASSWORD)
    s, _ = hub.login("mallory", PASSWORD)
    r = s.get(f"{hub.base}/hub/authorize/pending1", allow_redirects=False)
    approved = hub.host.check_output(
        "sqlite3 /var/lib/jupyterhub/jupyterhub.sqlite \"select is_authorized from users_info where username='pending1'\""
    ).strip()
    assert approved == "0", f"pending1 approved={approved!r}"
    return f"HTTP {r.status_code}; pending1 still pending"


@attack("account", "a new account under a deleted student's name inherits her work and SSH login")
def test_33_name_reuse(scene):
    hub = scene.hub
    scene.npu1.check_output(
        "docker exec -u 1000 ml-workshop-user-reuse sh -c 'echo old > /home/student/work/old-notes.txt'"
    )
    old_port = json.loads(scene.npu1.file(STATE).content_string)["ssh_ports"]["reuse"]
    hub.api("DELETE", "/users/reuse/server")
    hub.wait_stopped("reuse")
    assert hub.api("DELETE", "/users/reuse").status_code == 204
    assert "sent to the admin" in signup_text(hub, "reuse", "New-owner-2026!")
    assert not scene.npu1.file(f"{WORK}/reuse").exists, "the old work is where the new reuse gets it"
    archived = scene.npu1.check_output(f"ls {WORK}/.deleted").split()
    assert any(re.fullmatch(r"reuse-\d{8}T\d{6}Z", a) for a in archived), archived
    state = json.loads(scene.npu1.file(STATE).content_string)
    assert "reuse" not in state["ssh_ports"] and "reuse" not in state["npus"], state
    assert probe(scene.npu2, scene.npu1_ip, old_port) != "open", "the old SSH port still answers"
    _, r = hub.login("reuse", "New-owner-2026!")
    assert "/hub/login" in r.url, "the new reuse got in without approval"
    return f"old work archived ({[a for a in archived if a.startswith('reuse-')][0]}), port {old_port} freed, new account pending"


# --- network --------------------------------------------------------------------------------------
@attack("network", "sign up as the admin, superuser")
def test_34_signup_superuser(scene):
    for hub in (scene.hub, scene.hub2):
        text = signup_text(hub, "superuser")
        assert "is reserved" in text, text[:300]
        s, r = hub.login("superuser", "Take-over-2026!")
        assert "/hub/login" in r.url
    return "'is reserved' on both servers; the admin's password unchanged"


@attack("network", "sign up under a reserved name (admin, root, Admin)")
def test_35_signup_reserved(scene):
    for name in ("admin", "root", "Admin"):
        assert "is reserved" in signup_text(scene.hub, name), name
    assert not {"admin", "root"} & users_info(scene.hub)
    return "'is reserved' for each"


@attack("network", "sign up under names that break labels, paths and configs")
def test_36_signup_hostile_names(scene):
    names = ["张三", "{prefix}", "x{prefix.foo}", "-rf", "_x", ".x", "a\nb", "../etc", "bob smith"]
    for name in names:
        text = signup_text(scene.hub, name)
        assert "cannot be used" in text or "is reserved" in text, (name, text[:300])
    stored = users_info(scene.hub)
    assert not {n.lower() for n in names} & stored, stored
    return f"{len(names)} names refused ('cannot be used'), none stored"


@attack("network", "log in before the admin approved the sign-up")
def test_37_login_pending(scene):
    _, r = scene.hub.login("pending1", PASSWORD)
    assert "/hub/login" in r.url, r.url
    return "stays on /hub/login"


@attack("network", "lock the admin out by failing its logins (from another host)")
def test_38_admin_lockout(scene):
    out = json.loads(
        py(scene.cache, FORMS, f"http://{scene.npu1_ip}:28000", "login", "superuser", "wrong-guess-1", 8)
    )
    assert all(path != "/hub/home" for _, path in out), out
    su = scene.npu1.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    _, r = scene.hub.login("superuser", su)
    assert "/hub/login" not in r.url, "the admin is locked out"
    return f"{len(out)} wrong guesses; the admin still logs in"


@attack("network", "flood the login form to freeze the hub (bcrypt on every request)")
def test_39_login_flood(scene):
    out = json.loads(
        py(scene.cache, FORMS, f"http://{scene.npu1_ip}:28000", "login", "nobody", "guess-1234", 75)
    )
    codes = [c for c, _ in out]
    assert 429 in codes, codes
    t0 = time.monotonic()
    assert requests.get(f"{scene.hub.base}/hub/health", timeout=10).status_code == 200
    took = time.monotonic() - t0
    su = scene.npu1.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    _, r = scene.hub.login("superuser", su)
    assert "/hub/login" not in r.url, "the flood locked out other addresses"
    return f"{codes.count(429)} of {len(codes)} answered 429; the hub answered others in {took:.2f} s"


@attack("network", "guess a student's SSH password (from another host)")
def test_40_ssh_guessing(scene):
    port = json.loads(scene.npu1.file(STATE).content_string)["ssh_ports"]["alice"]
    h = scene.npu2
    h.check_output(
        "printf '#!/bin/sh\\necho try >> /tmp/mlw-askpass.log\\necho wrong-guess\\n' > /tmp/mlw-askpass"
        " && chmod 0755 /tmp/mlw-askpass && rm -f /tmp/mlw-askpass.log"
    )
    r = h.run(
        "SSH_ASKPASS=/tmp/mlw-askpass SSH_ASKPASS_REQUIRE=force DISPLAY=:0 setsid -w ssh -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o PreferredAuthentications=password -o PubkeyAuthentication=no "
        f"-o NumberOfPasswordPrompts=20 -o ConnectTimeout=10 -p {port} root@{scene.npu1_ip} true </dev/null"
    )
    tries = len(h.run("cat /tmp/mlw-askpass.log").stdout.split())
    assert r.rc != 0 and 0 < tries <= 3, (r.rc, tries, r.stderr[-300:])
    pw = scene.npu1.file(f"{WORK}/alice/.ml-workshop/root-password").content_string.strip()
    ok = h.run(
        f"sshpass -p {shlex.quote(pw)} ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        f"-o PreferredAuthentications=password -p {port} root@{scene.npu1_ip} echo in"
    )
    assert ok.stdout.strip() == "in", f"control: alice's own password: {ok.stderr[-200:]}"
    return f"cut off after {tries} of 20 guesses; the right password still works"


@attack("network", "call the hub's internal API and the proxy API from the network")
def test_41_internal_ports(scene):
    outs = {p: probe(scene.cache, scene.npu1_ip, p) for p in (8081, 8001)}
    assert "open" not in outs.values(), outs
    return str(outs)


@attack("network", "route to the students' containers directly (unpublished ports)")
def test_42_route_to_containers(scene):
    scene.cache.check_output(f"ip route replace 172.31.240.0/24 via {scene.npu1_ip}")
    try:
        outs = {p: probe(scene.cache, scene.alice_ip, p) for p in (22, 8888)}
    finally:
        scene.cache.run("ip route del 172.31.240.0/24")
    assert "open" not in outs.values(), outs
    return str(outs)


@attack("network", "talk plain HTTP to the TLS hub (passwords in clear)")
def test_43_plain_http_to_tls(scene):
    try:
        r = requests.get(f"http://127.0.0.1:{PORTS['npu2']}/hub/login", timeout=10)
        got = f"HTTP {r.status_code}"
        assert "password" not in r.text.lower(), "the login form over plain HTTP"
    except requests.ConnectionError as e:
        got = f"connection closed ({type(e).__name__})"
    return got


# --- browser --------------------------------------------------------------------------------------
@attack("browser", "open another student's JupyterLab while logged in as herself")
def test_44_browser_alice_lab(scene, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    base = base_url("npu1")
    login(page, base, "mallory", PASSWORD)
    resp = page.goto(f"{base}/user/alice/lab")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "npu1-attack-alice-lab.png"), full_page=True)
    lab = page.locator("#jp-main-dock-panel").count()
    ctx.close()
    assert not (lab and "/user/alice/" in page.url), page.url
    status = resp.status if resp else "no response"
    return f"{status} at {page.url.replace(base, '')[:80]}"


@attack("browser", "open the admin and approval pages as a student")
def test_45_browser_admin_pages(scene, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    base = base_url("npu1")
    login(page, base, "mallory", PASSWORD)
    statuses = {}
    for path in ("/hub/admin", "/hub/authorize"):
        resp = page.goto(f"{base}{path}")
        statuses[path] = resp.status
    ctx.close()
    assert all(s == 403 for s in statuses.values()), statuses
    return str(statuses)


@attack("browser", "sign up as superuser on the TLS hub")
def test_46_browser_signup_superuser(scene, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    base = base_url("npu2")
    page.goto(f"{base}/hub/signup")
    page.fill("#username_input", "superuser")
    page.fill("#password_input", "Take-over-2026!")
    if page.locator("#password_confirmation_input").count():
        page.fill("#password_confirmation_input", "Take-over-2026!")
    page.click("#signup_submit")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(ARTIFACTS / "npu2-attack-signup-superuser.png"), full_page=True)
    assert "is reserved" in page.content()
    ctx.close()
    return "'is reserved' shown"


@attack("browser", "steal the session cookie over plain HTTP (TLS hub)")
def test_47_browser_cookies_secure(scene, browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    base = base_url("npu2")
    su = scene.npu2.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
    login(page, base, "superuser", su)
    assert page.url.startswith("https://") and "/hub/login" not in page.url, page.url
    cookies = ctx.cookies()
    ctx.close()
    names = sorted(c["name"] for c in cookies)
    assert cookies and all(c["secure"] for c in cookies), [(c["name"], c["secure"]) for c in cookies]
    return f"TLS login; every cookie Secure ({', '.join(names)}); plain HTTP refused (test_43)"


# --- nothing lost ---------------------------------------------------------------------------------
def test_99_nothing_lost_and_mallory_stopped(scene):
    scene.hub.api("DELETE", "/users/mallory/server")
    scene.hub.wait_stopped("mallory")
    after = scene.guarded()
    assert after == scene.before, (scene.before, after)
    for hub, user in ((scene.hub, "alice"), (scene.hub2, "bob")):
        hub.answers(user)
    assert CA_FILE.exists()
