"""ascend_docker_runtime alone on a bare host, after converge (fresh install of the EMULATED
runtime 6.0.0 into --install-path=/opt/Ascend), idempotence, check and side_effect (--check
--diff, bad input refused, then 6.0.1 pinned: the vendor's --upgrade)."""

import json

import pytest

RUNTIME_DIR = "/opt/Ascend/Ascend-Docker-Runtime"
RUNTIME = f"{RUNTIME_DIR}/ascend-docker-runtime"


def test_installer_ran_once_per_version_with_the_documented_flags(host):
    """--install of 6.0.0 into the configured path for Docker, then --upgrade to 6.0.1: idempotence,
    check mode and the refused cases of side_effect ran no installer."""
    arch = host.system_info.arch
    log = host.file("/var/log/ascend-emulation/installers.log").content_string.splitlines()
    assert log == [
        f"Ascend-docker-runtime_6.0.0_linux-{arch}.run --nox11 --install --install-path=/opt/Ascend --install-scene=docker",
        f"Ascend-docker-runtime_6.0.1_linux-{arch}.run --nox11 --upgrade --install-path=/opt/Ascend --install-scene=docker",
    ]


def test_eula_accepted_and_install_succeeded(host):
    log = host.file("/var/log/ascend-docker-runtime/installer.log").content_string
    assert log.count("user accepted EULA") == 2  # install and upgrade
    assert log.count("ascend-docker-runtime install success") == 1
    assert "[ERROR]" not in log


@pytest.mark.parametrize("name", ["ascend-docker-runtime", "ascend-docker-hook", "ascend-docker-cli"])
def test_runtime_files(host, name):
    f = host.file(f"{RUNTIME_DIR}/{name}")
    assert f.is_file and f.user == "root" and f.mode & 0o100


def test_installed_version(host):
    info = host.file(f"{RUNTIME_DIR}/ascend_docker_runtime_install.info").content_string.splitlines()
    assert "version=v6.0.1" in info and "install-scene=docker" in info  # upgraded in side_effect
    assert f"path={RUNTIME_DIR}" in info


def test_default_location_unused(host):
    assert not host.file("/usr/local/Ascend/Ascend-Docker-Runtime").exists


def test_vendor_installer_registered_the_runtime_with_docker(host):
    """The vendor installer (--install-scene=docker) merges the runtime into daemon.json and makes
    it the default; the docker role rewrites this file from docker_daemon_runtimes later."""
    f = host.file("/etc/docker/daemon.json")
    assert f.mode == 0o600
    daemon = json.loads(f.content_string)
    assert daemon["runtimes"]["ascend"] == {"path": RUNTIME, "runtimeArgs": []}
    assert daemon["default-runtime"] == "ascend"


def test_staging_directory_private(host):
    d = host.file("/var/cache/ml-workshop/ascend")
    assert d.is_directory and d.user == "root" and d.mode == 0o700


def test_local_fact_published(host):
    """/etc/ansible/facts.d/ascend_docker_runtime.fact: the docker role's docker_daemon_runtimes
    defaults to its daemon_runtimes; the runtime it names is the installed one, at the installed version."""
    f = host.file("/etc/ansible/facts.d/ascend_docker_runtime.fact")
    assert f.user == "root" and f.mode == 0o644
    fact = json.loads(f.content_string)
    assert fact["path"] == RUNTIME
    assert fact["daemon_runtimes"] == {"ascend": {"path": RUNTIME, "runtimeArgs": []}}
    assert host.file(fact["path"]).is_file
    installed = host.file(f"{RUNTIME_DIR}/ascend_docker_runtime_install.info").content_string
    assert f"version=v{fact['version']}" in installed.splitlines()
