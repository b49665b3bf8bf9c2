"""cache_client role on a bare host: apt, pip, npm and the login environment point at the cache
host the inventory names (a stand-in in group cache_proxy: its advertised address, its devpi
port; nothing contacts it), with the exceptions configured, and the operator's own settings in
those files kept."""

import configparser
import json

import pytest

CACHE = "cache.workshop.test"
APT = f"http://{CACHE}:3142"
PIP_INDEX = f"http://{CACHE}:3999/root/pypi/+simple/"
WHISTLE = f"http://{CACHE}:8899"
NO_PROXY = f"localhost,127.0.0.1,::1,.lab.test,{CACHE}"

FILES = [
    "/etc/apt/apt.conf.d/01ml-workshop-proxy",
    "/etc/pip.conf",
    "/etc/npmrc",
    "/etc/environment",
]


@pytest.mark.parametrize("path", FILES)
def test_files_root_owned_world_readable(host, path):
    f = host.file(path)
    assert f.is_file and f.user == "root" and f.group == "root" and f.mode == 0o644


def test_apt_uses_the_cache_with_direct_exceptions(host):
    conf = host.file(FILES[0]).content_string
    assert "Managed by ml-workshop" in conf
    # What apt itself reads from its configuration directory.
    dump = host.check_output("apt-config dump")
    assert f'Acquire::http::Proxy "{APT}";' in dump
    assert 'Acquire::http::Proxy::repo.internal.test "DIRECT";' in dump


def test_pip_conf(host):
    cfg = configparser.ConfigParser()
    cfg.read_string(host.file("/etc/pip.conf").content_string)
    assert dict(cfg["global"]) == {
        "retries": "7",  # the operator's, kept
        "index-url": PIP_INDEX,
        "trusted-host": CACHE,
        "timeout": "60",
    }
    assert dict(cfg["install"]) == {"no-compile": "true"}


def test_npmrc(host):
    lines = host.file("/etc/npmrc").content_string.splitlines()
    cfg = dict(line.split("=", 1) for line in lines if line and not line.startswith(("#", ";")))
    assert cfg == {
        "fund": "false",  # the operator's, kept
        "proxy": WHISTLE,
        "https-proxy": WHISTLE,
        "noproxy": NO_PROXY,
        "registry": "https://registry.npmmirror.com/",
    }


def test_environment_file_block(host):
    text = host.file("/etc/environment").content_string
    assert text.startswith("MLW_OPERATOR=kept\n")
    assert "# BEGIN ml-workshop cache proxy (cache_client role)" in text
    assert "# END ml-workshop cache proxy (cache_client role)" in text


def test_login_environment(host):
    # pam_env reads /etc/environment for a login session (su -l), as for an SSH login.
    env = dict(
        line.split("=", 1) for line in host.check_output("su -l root -c env").splitlines() if "=" in line
    )
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        assert env[name] == WHISTLE
    assert env["no_proxy"] == env["NO_PROXY"] == NO_PROXY
    assert env["MLW_OPERATOR"] == "kept"


def test_published_fact(host):
    # The role's contract with the hub, images and docker roles: ansible_local.cache_client.
    f = host.file("/etc/ansible/facts.d/cache_client.fact")
    assert f.user == "root" and f.mode == 0o644
    fact = json.loads(f.content_string)
    assert fact["host"] == CACHE and fact["ports"] == [3142, 3999, 8899]
    assert fact["apt_proxy_url"] == APT
    assert fact["pip_index_url"] == PIP_INDEX
    assert fact["pip_trusted_host"] == CACHE
    assert fact["docker_http_proxy"] == fact["docker_https_proxy"] == WHISTLE
    assert fact["docker_no_proxy"] == NO_PROXY
    assert fact["container_env"] == {
        "MLW_APT_PROXY": APT,
        "PIP_INDEX_URL": PIP_INDEX,
        "PIP_TRUSTED_HOST": CACHE,
        "PIP_DEFAULT_TIMEOUT": "60",
        "UV_DEFAULT_INDEX": PIP_INDEX,
        "UV_HTTP_TIMEOUT": "60",
        "npm_config_proxy": WHISTLE,
        "npm_config_https_proxy": WHISTLE,
        "npm_config_noproxy": NO_PROXY,
        "npm_config_registry": "https://registry.npmmirror.com/",
        "http_proxy": WHISTLE,
        "https_proxy": WHISTLE,
        "HTTP_PROXY": WHISTLE,
        "HTTPS_PROXY": WHISTLE,
        "no_proxy": NO_PROXY,
        "NO_PROXY": NO_PROXY,
    }


def test_fact_read_by_ansible(host):
    # What a consumer's play sees after gathering facts.
    local = host.ansible("setup", "filter=ansible_local")["ansible_facts"]["ansible_local"]
    assert local["cache_client"]["pip_index_url"] == PIP_INDEX
