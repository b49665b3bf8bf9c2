"""cache_proxy role on the cache instance: services, units, hardening, secrets, restarts."""

import json
import time

import pytest
from conftest import CACHE

testinfra_hosts = [f"ansible://{CACHE}"]

SERVICES = {"apt-cacher-ng": 3142, "devpi-server": 3141, "whistle": 8899}


@pytest.mark.parametrize("name,port", SERVICES.items())
def test_service_running_enabled_listening(host, name, port):
    svc = host.service(name)
    assert svc.is_running and svc.is_enabled
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_whistle_ui_listening(host):
    assert host.socket("tcp://0.0.0.0:8900").is_listening


@pytest.mark.parametrize("name", SERVICES)
def test_units_managed_and_hardened(host, name):
    unit = host.file(f"/etc/systemd/system/{name}.service").content_string
    assert "Managed by ml-workshop" in unit
    props = host.check_output(
        f"systemctl show {name} -p ProtectSystem -p PrivateTmp -p NoNewPrivileges -p Restart -p ReadWritePaths -p User"
    )
    assert "ProtectSystem=strict" in props
    assert "PrivateTmp=yes" in props
    assert "NoNewPrivileges=yes" in props
    assert "Restart=on-failure" in props
    assert "User=root" not in props


def test_acng_conf(host):
    conf = host.file("/etc/apt-cacher-ng/acng.conf").content_string
    assert "Managed by ml-workshop" in conf
    assert "Port: 3142" in conf
    assert "CacheDir: /var/cache/apt-cacher-ng" in conf
    assert "Remap-debrep: file:deb_mirror*.gz /debian ; http://deb.debian.org/debian/" in conf


def test_acng_report_page_needs_credentials(host):
    # Maintenance actions of the report page are behind AdminAuth (security.conf, 0600).
    sec = host.file("/etc/apt-cacher-ng/security.conf")
    assert sec.mode == 0o600 and sec.user == "apt-cacher-ng"
    assert "AdminAuth: admin:acng-test-password" in sec.content_string
    url = "http://127.0.0.1:3142/acng-report.html?doCount=Count+Data"
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' '{url}'") == "401"
    code = host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -u admin:acng-test-password '{url}'")
    assert code == "200"


def test_generated_secrets_private(host):
    d = host.file("/etc/ml-workshop/secrets")
    assert d.mode == 0o700
    for name in ("devpi-root-password", "whistle-ui-password"):
        f = host.file(f"/etc/ml-workshop/secrets/{name}")
        assert f.mode == 0o600 and f.user == "root"
        assert len(f.content_string.strip()) == 32
    # Given password: nothing generated.
    assert not host.file("/etc/ml-workshop/secrets/acng-admin-password").exists
    cfg = host.file("/var/lib/whistle/whistle-config.json")
    assert cfg.mode == 0o600 and cfg.user == "whistle"
    assert (
        json.loads(cfg.content_string)["password"]
        == host.file("/etc/ml-workshop/secrets/whistle-ui-password").content_string.strip()
    )


def test_devpi_data_and_mirror(host):
    assert host.file("/var/lib/devpi/server/.nodeinfo").user == "devpi"
    assert host.file("/var/lib/devpi/devpi-secret").mode == 0o600
    out = json.loads(
        host.check_output(
            "curl -s -H 'Accept: application/json' 'http://127.0.0.1:3141/root/pypi?no_projects='"
        )
    )
    assert out["result"]["type"] == "mirror"
    assert out["result"]["mirror_url"] == "https://pypi.org/simple/"
    env = host.check_output("systemctl show devpi-server -p Environment")
    assert "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt" in env


def test_whistle_rules_from_variables(host):
    rules = json.loads(host.file("/var/lib/whistle/whistle-config.json").content_string)["shadowRules"]
    assert "deb.debian.org proxy://127.0.0.1:3142" in rules
    assert "mlw-rule.test statusCode://418" in rules
    # The extra rule is live: whistle answers for the test host itself.
    code = host.check_output(
        "curl -s -o /dev/null -w '%{http_code}' -x http://127.0.0.1:8899 http://mlw-rule.test/"
    )
    assert code == "418"


def test_whistle_ui_requires_credentials(host):
    assert host.check_output("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8900/") == "401"
    pw = host.file("/etc/ml-workshop/secrets/whistle-ui-password").content_string.strip()
    assert (
        host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -u admin:{pw} http://127.0.0.1:8900/")
        == "200"
    )
    assert (
        host.check_output(
            f"curl -s -o /dev/null -w '%{{http_code}}' -u admin:wrong{pw} http://127.0.0.1:8900/"
        )
        == "401"
    )


def _main_pid(host, name):
    return int(host.check_output(f"systemctl show {name} -p MainPID --value"))


@pytest.mark.parametrize("name,port", SERVICES.items())
def test_killed_service_is_restarted(host, name, port):
    pid = _main_pid(host, name)
    assert pid > 0
    host.check_output(f"kill -9 {pid}")
    for _ in range(60):
        time.sleep(1)
        new = _main_pid(host, name)
        if (
            new not in (0, pid)
            and host.service(name).is_running
            and host.socket(f"tcp://0.0.0.0:{port}").is_listening
        ):
            break
    else:
        pytest.fail(f"{name} was not restarted by systemd after kill -9 of {pid}")
    assert int(host.check_output(f"systemctl show {name} -p NRestarts --value")) >= 1
