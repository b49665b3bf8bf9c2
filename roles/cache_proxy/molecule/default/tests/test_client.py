"""cache_client role on the client instance, and real downloads through the cache host."""

import json
import re

from conftest import CACHE, CLIENT

testinfra_hosts = [f"ansible://{CLIENT}"]

DEB_DIR = "/var/cache/apt-cacher-ng/debrep/pool/main/h/hello"
ACNG_LOG = "/var/log/apt-cacher-ng/apt-cacher.log"
DEVPI_LOG = "journalctl -u devpi-server --no-pager -o cat"


def test_client_configuration(host):
    apt = host.file("/etc/apt/apt.conf.d/01ml-workshop-proxy").content_string
    assert f'Acquire::http::Proxy "http://{CACHE}:3142";' in apt
    pip = host.file("/etc/pip.conf").content_string
    assert f"index-url = http://{CACHE}:3141/root/pypi/+simple/" in pip
    assert f"trusted-host = {CACHE}" in pip
    assert "timeout = 60" in pip
    npmrc = host.file("/etc/npmrc").content_string
    assert f"proxy=http://{CACHE}:8899" in npmrc
    env = host.file("/etc/environment").content_string
    assert f"http_proxy=http://{CACHE}:8899" in env
    assert re.search(rf"^no_proxy=.*\b{re.escape(CACHE)}\b", env, re.M)


def test_container_facts(host):
    # the role's contract: /etc/ansible/facts.d/cache_client.fact (ansible_local.cache_client)
    fact = host.file("/etc/ansible/facts.d/cache_client.fact")
    assert fact.mode == 0o644
    facts = json.loads(fact.content_string)
    env = facts["container_env"]
    assert env["PIP_INDEX_URL"] == f"http://{CACHE}:3141/root/pypi/+simple/"
    assert env["PIP_TRUSTED_HOST"] == CACHE
    assert env["PIP_DEFAULT_TIMEOUT"] == "60"
    assert env["UV_DEFAULT_INDEX"] == env["PIP_INDEX_URL"] and env["UV_HTTP_TIMEOUT"] == "60"
    assert env["MLW_APT_PROXY"] == f"http://{CACHE}:3142" == facts["apt_proxy_url"]
    assert env["npm_config_proxy"] == f"http://{CACHE}:8899"
    assert env["http_proxy"] == f"http://{CACHE}:8899"
    assert CACHE in env["no_proxy"].split(",")
    assert facts["pip_index_url"] == env["PIP_INDEX_URL"]
    assert facts["docker_http_proxy"] == f"http://{CACHE}:8899"


def _lines(cache_host, needle):
    return [line for line in cache_host.file(ACNG_LOG).content_string.splitlines() if needle in line]


def test_apt_package_cached_then_hit(host, cache_host):
    # side_effect installed `hello` through the proxy: the .deb is in the cache directory.
    debs = cache_host.check_output(f"ls {DEB_DIR}").split()
    assert any(d.startswith("hello_") and d.endswith(".deb") for d in debs)
    deb = next(d for d in debs if d.endswith(".deb"))
    incoming_before = [x for x in _lines(cache_host, deb) if "|I|" in x]
    served_before = [x for x in _lines(cache_host, deb) if "|O|" in x]
    assert len(incoming_before) == 1
    # Fetch it again from a clean client archive: served from the cache (O), not fetched (I).
    host.check_output("apt-get clean && apt-get install --reinstall -y -d hello")
    assert host.file(f"/var/cache/apt/archives/{deb}").exists
    assert len([x for x in _lines(cache_host, deb) if "|I|" in x]) == 1
    assert len([x for x in _lines(cache_host, deb) if "|O|" in x]) == len(served_before) + 1


def test_pip_download_cached_then_served_locally(host, cache_host):
    wheel = "six-1.16.0-py2.py3-none-any.whl"
    files = cache_host.check_output("find /var/lib/devpi/server/+files/root/pypi -name '*.whl'")
    assert wheel in files
    remote = "reading remote: URL('https://files.pythonhosted.org/"
    fetched = [x for x in cache_host.check_output(DEVPI_LOG).splitlines() if remote in x and wheel in x]
    assert len(fetched) == 1
    host.check_output(
        "rm -rf /root/pip-again && python3 -m pip download --no-deps -d /root/pip-again six==1.16.0"
    )
    assert host.file(f"/root/pip-again/{wheel}").exists
    log = cache_host.check_output(DEVPI_LOG).splitlines()
    assert len([x for x in log if remote in x and wheel in x]) == 1
    assert len([x for x in log if "GET /root/pypi/+f/" in x and wheel in x]) >= 2


def test_http_request_through_whistle(host, cache_host):
    # deb.debian.org is routed by the whistle upstream rule to apt-cacher-ng (standing in for a site proxy).
    url = "http://deb.debian.org/debian/dists/bookworm/Release"
    before = len(_lines(cache_host, "dists/bookworm/Release"))
    out = host.check_output(f"curl -sf -x http://{CACHE}:8899 {url} | head -5")
    assert "Origin: Debian" in out
    assert len(_lines(cache_host, "dists/bookworm/Release")) > before


def test_whistle_ui_refuses_without_credentials(host):
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' http://{CACHE}:8900/") == "401"
