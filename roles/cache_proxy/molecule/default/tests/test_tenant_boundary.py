"""The cache host's tenant boundary (roles/cache_proxy/README.md, "Threat model"). Each test is an
attack by a student: from the outsider (same network, not in the client list), or from the
allowed client through whistle and against devpi. Every attack is tried for real against a
listener that would answer, proves that listener answers without the boundary, and reports one
line (printed at the end of the run). Traffic stays inside the scenario: 169.254.169.254 is
routed to the client for the duration of the tests."""

import json
import shlex

import pytest
from conftest import ATTACKS, CACHE, CLIENT

testinfra_hosts = [f"ansible://{CLIENT}"]

PORTS = {"apt-cacher-ng": 3142, "devpi": 3141, "whistle proxy": 8899}
WHISTLE = f"http://{CACHE}:8899"
METADATA = "169.254.169.254"
PRIVATE_MARK = "mlw-private-listener"
METADATA_MARK = "mlw-fake-metadata"
TLS_MARK = "mlw-allowed-upstream"


def report(attack, result, refused):
    ATTACKS.append(f"{'REFUSED' if refused else 'ALLOWED'}  {attack}: {result}")


def connect(h, addr, port, timeout=5):
    """A TCP connection from h: 'open', or the error."""
    code = f"import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), {timeout}).close()"
    r = h.run(f"python3 -c {shlex.quote(code)} {addr} {port}")
    if r.rc == 0:
        return "open"
    return (r.stderr.strip().splitlines() or [f"rc {r.rc}"])[-1]


def via_whistle(h, url, tunnel=False):
    """curl through whistle from h: (CONNECT status, HTTP status, curl rc, body)."""
    opts = "-p " if tunnel else ""
    r = h.run(
        f"curl -sS -k -m 30 {opts}-x {WHISTLE} -o /tmp/mlw-attack-body "
        f"-w '%{{http_connect}} %{{http_code}}' {shlex.quote(url)}"
    )
    body = h.run("cat /tmp/mlw-attack-body 2>/dev/null; rm -f /tmp/mlw-attack-body").stdout
    connect_code, http_code = (r.stdout.strip().split() + ["000", "000"])[:2]
    return connect_code, http_code, r.rc, body


def _ip(h):
    return h.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def listeners(host, cache_host):
    """On the client: a private HTTP listener (:8000, not listed), a TLS listener (:8443, listed in
    cache_proxy_whistle_allowed_destinations) and a fake metadata service on 169.254.169.254:80,
    which the cache host routes to the client (so nothing leaves the scenario)."""
    client_ip = _ip(host)
    tls = (
        "import http.server,ssl\n"
        "s=http.server.HTTPServer(('0.0.0.0',8443),http.server.SimpleHTTPRequestHandler)\n"
        "c=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain('/tmp/mlw-tls/c.pem','/tmp/mlw-tls/k.pem')\n"
        "s.socket=c.wrap_socket(s.socket,server_side=True); s.serve_forever()\n"
    )
    setup = [
        "mkdir -p /tmp/mlw-www /tmp/mlw-meta /tmp/mlw-tls",
        f"echo {PRIVATE_MARK} > /tmp/mlw-www/index.html",
        f"echo {METADATA_MARK} > /tmp/mlw-meta/index.html",
        f"echo {TLS_MARK} > /tmp/mlw-tls/index.html",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=mlw-client"
        " -keyout /tmp/mlw-tls/k.pem -out /tmp/mlw-tls/c.pem 2>/dev/null",
        f"ip addr replace {METADATA}/32 dev eth0",
        "systemd-run --unit mlw-test-private -p WorkingDirectory=/tmp/mlw-www python3 -m http.server 8000",
        f"systemd-run --unit mlw-test-metadata -p WorkingDirectory=/tmp/mlw-meta python3 -m http.server 80 --bind {METADATA}",
        f"systemd-run --unit mlw-test-tls -p WorkingDirectory=/tmp/mlw-tls python3 -c {shlex.quote(tls)}",
    ]
    for cmd in setup:
        host.check_output(cmd)
    cache_host.check_output(f"ip route replace {METADATA}/32 via {client_ip}")
    for addr, port in (("127.0.0.1", 8000), ("127.0.0.1", 8443), (METADATA, 80)):
        wait = f"until (exec 3<>/dev/tcp/{addr}/{port}) 2>/dev/null; do sleep 0.5; done"
        host.check_output(f"timeout 20 bash -c {shlex.quote(wait)}")
    yield client_ip
    cache_host.run(f"ip route del {METADATA}/32")
    host.run("systemctl stop mlw-test-private mlw-test-metadata mlw-test-tls")
    host.run(f"ip addr del {METADATA}/32 dev eth0")


# --- Who may connect -------------------------------------------------------------------------------


@pytest.mark.parametrize("name,port", PORTS.items())
def test_attack_outsider_uses_cache_port(outsider_host, name, port):
    result = connect(outsider_host, CACHE, port)
    report(f"outsider -> {CACHE}:{port} ({name})", result, result != "open")
    assert "refused" in result.lower(), result


def test_outsider_reaches_the_cache_host_at_all(outsider_host):
    # Control: the outsider is on the cache host's network; the whistle UI (open to anyone by
    # default, password-protected) answers it, so the refusals above are the client list.
    assert connect(outsider_host, CACHE, 8900) == "open"


@pytest.mark.parametrize("name,port", PORTS.items())
def test_allowed_client_uses_cache_port(host, name, port):
    assert connect(host, CACHE, port) == "open"


def test_attack_outsider_apt_through_acng(outsider_host):
    r = outsider_host.run(
        f"curl -sS -m 10 -x http://{CACHE}:3142 -o /dev/null -w '%{{http_code}}' "
        "http://deb.debian.org/debian/dists/bookworm/Release"
    )
    report("outsider: apt through apt-cacher-ng", f"curl rc {r.rc} {r.stderr.strip()}", r.rc != 0)
    assert r.rc != 0 and r.stdout.strip() in ("", "000")


# --- Where whistle may connect ---------------------------------------------------------------------

LOOPBACK_ATTACKS = [
    ("GET cache loopback devpi", "http://127.0.0.1:3141/+api", False),
    ("CONNECT cache loopback devpi", "http://127.0.0.1:3141/+api", True),
    ("GET a loopback-only service of the cache host", "http://127.0.0.1:9999/", False),
    ("CONNECT a loopback-only service of the cache host", "http://127.0.0.1:9999/", True),
    ("GET localhost (name -> loopback) devpi", "http://localhost:3141/+api", False),
    ("GET the cache host's own address (devpi)", f"http://{CACHE}:3141/+api", False),
    ("CONNECT the cache host's own address (devpi)", f"http://{CACHE}:3141/+api", True),
]


LOOPBACK_MARK = "mlw-loopback-only"


@pytest.fixture(scope="module")
def loopback_service(cache_host):
    """A root-owned service on the cache host's loopback only (as an admin tool would be)."""
    cache_host.check_output(f"mkdir -p /tmp/mlw-lo && echo {LOOPBACK_MARK} > /tmp/mlw-lo/index.html")
    cache_host.check_output(
        "systemd-run --unit mlw-test-loopback -p WorkingDirectory=/tmp/mlw-lo python3 -m http.server 9999 --bind 127.0.0.1"
    )
    wait = "until (exec 3<>/dev/tcp/127.0.0.1/9999) 2>/dev/null; do sleep 0.5; done"
    cache_host.check_output(f"timeout 20 bash -c {shlex.quote(wait)}")
    yield
    cache_host.run("systemctl stop mlw-test-loopback")


@pytest.mark.parametrize("attack,url,tunnel", LOOPBACK_ATTACKS, ids=[a[0] for a in LOOPBACK_ATTACKS])
def test_attack_whistle_to_cache_host_itself(host, cache_host, loopback_service, attack, url, tunnel):
    # Control: the service answers on the cache host itself.
    local = url.replace(CACHE, "127.0.0.1").replace("localhost", "127.0.0.1")
    assert cache_host.run(f"curl -s -o /dev/null -w '%{{http_code}}' {local}").stdout in ("200", "401")
    connect_code, code, rc, body = via_whistle(host, url, tunnel)
    leaked = code == "200" or '"result"' in body or LOOPBACK_MARK in body
    report(
        f"client via whistle: {attack} ({url})",
        f"CONNECT {connect_code} HTTP {code} curl rc {rc}",
        not leaked,
    )
    assert not leaked, body[:300]


def test_listed_upstream_proxy_is_reachable_on_its_port_only(host):
    # The scenario's whistle upstream proxy is apt-cacher-ng on the cache host's loopback
    # (127.0.0.1:3142): listed, so whistle reaches that port (as it must for the upstream rule), and
    # clients can too through whistle. A listed destination is a decision; other loopback ports stay
    # refused (the attacks above).
    _, code, _, body = via_whistle(host, "http://127.0.0.1:3142/acng-report.html")
    report(
        "client via whistle: GET 127.0.0.1:3142 (the listed upstream proxy; expected to answer)",
        f"HTTP {code}",
        False,
    )
    assert code == "200" and "Apt-Cacher" in body


@pytest.mark.parametrize("tunnel", [False, True], ids=["GET", "CONNECT"])
def test_attack_whistle_to_metadata_address(host, cache_host, listeners, tunnel):
    url = f"http://{METADATA}/latest/meta-data/"
    # Control: from the cache host itself the (fake, in-scenario) metadata service answers.
    assert METADATA_MARK in cache_host.check_output(f"curl -s -m 10 http://{METADATA}/")
    connect_code, code, rc, body = via_whistle(host, url, tunnel)
    leaked = METADATA_MARK in body
    method = "CONNECT" if tunnel else "GET"
    report(
        f"client via whistle: {method} {url}", f"CONNECT {connect_code} HTTP {code} curl rc {rc}", not leaked
    )
    assert not leaked and code != "200"


@pytest.mark.parametrize("tunnel", [False, True], ids=["GET", "CONNECT"])
def test_attack_whistle_to_unlisted_private_address(host, cache_host, listeners, tunnel):
    url = f"http://{listeners}:8000/"
    assert PRIVATE_MARK in cache_host.check_output(f"curl -s -m 10 {url}")
    connect_code, code, rc, body = via_whistle(host, url, tunnel)
    leaked = PRIVATE_MARK in body
    method = "CONNECT" if tunnel else "GET"
    report(
        f"client via whistle: {method} {url} (private, not listed)",
        f"CONNECT {connect_code} HTTP {code} curl rc {rc}",
        not leaked,
    )
    assert not leaked and code != "200"


def test_https_through_whistle_to_allowed_upstream(host, listeners):
    # The normal path: a CONNECT tunnel to a listed destination (CLIENT:8443) carries TLS end to end.
    connect_code, code, rc, body = via_whistle(host, f"https://{CLIENT}:8443/")
    report(
        f"client via whistle: https://{CLIENT}:8443/ (listed)", f"CONNECT {connect_code} HTTP {code}", False
    )
    assert (connect_code, code, rc) == ("200", "200", 0) and TLS_MARK in body


def test_whistle_egress_rules_loaded(cache_host):
    table = cache_host.check_output("nft list table inet ml_workshop_cache")
    assert "skuid" in table and "jump whistle_egress" in table
    assert "169.254.0.0/16" in table and "127.0.0.0/8" in table
    # The listed destination is resolved on the cache host and limited to its port.
    client_ip = cache_host.check_output(f"getent ahostsv4 {CLIENT} | head -1 | cut -d' ' -f1")
    assert f"ip daddr {client_ip} tcp dport 8443 accept" in table
    # The upstream proxy of the scenario's whistle rule (127.0.0.1:3142) is allowed, on its port only.
    assert "ip daddr 127.0.0.1 tcp dport 3142 accept" in table


# --- devpi: anonymous users cannot create or upload ------------------------------------------------


def _devpi(h, method, path, data=None, extra=""):
    body = (
        f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(data))} " if data is not None else ""
    )
    r = h.run(
        f"curl -s -m 30 -o /tmp/mlw-devpi-body -w '%{{http_code}}' -X {method} -H 'Accept: application/json' "
        f"{body}{extra} http://{CACHE}:3141{path}"
    )
    return r.stdout.strip(), h.run("cat /tmp/mlw-devpi-body; rm -f /tmp/mlw-devpi-body").stdout


SECRET = "/etc/ml-workshop/secrets/devpi-root-password"
# root's credentials go to curl on stdin (a config on `-K -`), never on a command line.
ROOT_AUTH = f'printf \'header = "X-Devpi-Auth: %s"\\n\' "$(printf \'root:%s\' "$(cat {SECRET})" | base64 -w0)" | curl -K - '


@pytest.fixture(scope="module")
def root_stage_index(cache_host):
    """root/mlw-stage: an upload index created by root (as an organiser would)."""
    r = cache_host.run(
        ROOT_AUTH + "-s -o /dev/null -w '%{http_code}' -X PUT -H 'Accept: application/json' "
        """-H 'Content-Type: application/json' -d '{"type": "stage", "bases": []}' """
        "http://127.0.0.1:3141/root/mlw-stage"
    )
    assert r.stdout in ("200", "201", "409"), (r.stdout, r.stderr)  # 409: exists from an earlier run
    return "/root/mlw-stage"


def test_attack_devpi_anonymous_user_creation(host):
    code, body = _devpi(host, "PUT", "/mlw-attacker", {"password": "attacker", "email": "a@example.org"})
    report(
        "client: devpi anonymous `devpi user -c mlw-attacker`",
        f"HTTP {code} {body.strip()[:80]}",
        code in ("401", "403"),
    )
    assert code in ("401", "403")
    code, users = _devpi(host, "GET", "/")
    assert code == "200" and "mlw-attacker" not in json.loads(users)["result"]


def test_attack_devpi_anonymous_index_creation(host):
    code, body = _devpi(host, "PUT", "/root/mlw-evil", {"type": "stage", "bases": ["root/pypi"]})
    report(
        "client: devpi anonymous index creation root/mlw-evil",
        f"HTTP {code} {body.strip()[:80]}",
        code in ("401", "403"),
    )
    assert code in ("401", "403")


def test_attack_devpi_anonymous_mirror_change(host):
    code, body = _devpi(host, "PATCH", "/root/pypi", ["mirror_url=http://evil.example/simple/"])
    report(
        "client: devpi anonymous change of root/pypi's upstream",
        f"HTTP {code} {body.strip()[:80]}",
        code in ("401", "403"),
    )
    assert code in ("401", "403")


def test_attack_devpi_anonymous_upload(host, root_stage_index):
    host.check_output("printf 'not a wheel' > /tmp/mlw_evil-1.0-py3-none-any.whl")
    form = (
        "-F ':action=file_upload' -F name=mlw-evil -F version=1.0 "
        "-F 'content=@/tmp/mlw_evil-1.0-py3-none-any.whl'"
    )
    r = host.run(
        f"curl -s -m 30 -o /dev/null -w '%{{http_code}}' {form} http://{CACHE}:3141{root_stage_index}/"
    )
    code = r.stdout.strip()
    report(f"client: devpi anonymous upload to {root_stage_index}", f"HTTP {code}", code in ("401", "403"))
    assert code in ("401", "403")
    listing = host.run(
        f"curl -s -H 'Accept: application/json' http://{CACHE}:3141{root_stage_index}/mlw-evil"
    )
    assert "mlw_evil-1.0" not in listing.stdout


def test_devpi_restricted_and_root_password_private(cache_host):
    cmdline = cache_host.check_output("systemctl show devpi-server -p ExecStart --value")
    assert "--restrict-modify root" in cmdline
    # The password (patterns read from the secret file: never on grep's own command line) is on
    # no command line and in no file other users can read.
    assert cache_host.run(f"grep -lsF -f {SECRET} /proc/[0-9]*/cmdline").stdout.strip() == ""
    found = cache_host.run(
        f"grep -rlsF -f {SECRET} /etc /var/lib /opt/ml-workshop /var/log /root /tmp"
    ).stdout.split()
    readable = [f for f in found if cache_host.file(f).mode & 0o004]
    report(
        "cache host: devpi root password on a command line or in a world-readable file",
        f"files holding it: {found}, world-readable: {readable or 'none'}",
        not readable,
    )
    assert readable == []
    # root still logs in with it (devpi-init took it from the environment).
    login = (
        'python3 -c \'import json,sys; print(json.dumps({"user": "root", "password": open(sys.argv[1]).read().strip()}))\' '
        f"{SECRET} | curl -s -o /dev/null -w '%{{http_code}}' -X POST -H 'Accept: application/json' "
        "-d @- http://127.0.0.1:3141/+login"
    )
    assert cache_host.run(login).stdout == "200"


# --- The boundary itself ---------------------------------------------------------------------------


def test_firewall_persistent_and_required(cache_host):
    unit = cache_host.service("ml-workshop-cache-firewall")
    assert unit.is_enabled
    assert cache_host.check_output("systemctl is-active ml-workshop-cache-firewall") == "active"
    for name in ("apt-cacher-ng", "devpi-server", "whistle"):
        props = cache_host.check_output(f"systemctl show {name} -p Requires -p After")
        assert props.count("ml-workshop-cache-firewall.service") == 2, props
    conf = cache_host.file("/etc/ml-workshop/cache-firewall.nft")
    assert conf.user == "root" and conf.mode == 0o644
