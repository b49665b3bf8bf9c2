"""ascend_cann alone on a host with the EMULATED driver 24.1.rc1 (prepare.yml), after converge
(fresh install of CANN 8.0.RC1: toolkit, kernels, nnal), idempotence, check and side_effect
(--check --diff, bad input refused)."""

import json

import pytest

ASCEND = "/usr/local/Ascend"
TOOLKIT = f"{ASCEND}/ascend-toolkit"
VERSION = "8.0.RC1"


def _packages(host):
    arch = host.system_info.arch
    return {
        "toolkit": f"Ascend-cann-toolkit_{VERSION}_linux-{arch}.run",
        "kernels": f"Ascend-cann-kernels-910b_{VERSION}_linux.run",
        "nnal": f"Ascend-cann-nnal_{VERSION}_linux-{arch}.run",
    }


def test_installers_ran_once_each_in_order(host):
    """Every package checked, then installed toolkit -> kernels -> nnal, with --install-for-all;
    idempotence, check mode and the refused cases of side_effect ran no installer at all."""
    log = host.file("/var/log/ascend-emulation/installers.log").content_string.splitlines()
    p = _packages(host)
    flags = "--nox11 --install --quiet --install-for-all"
    assert [line for line in log if line.startswith("Ascend-cann-")] == [
        f"{p['toolkit']} --check",
        f"{p['kernels']} --check",
        f"{p['nnal']} --check",
        f"{p['toolkit']} {flags}",
        f"{p['kernels']} {flags}",
        f"{p['nnal']} {flags}",
    ]


def test_toolkit_installed(host):
    latest = host.file(f"{TOOLKIT}/latest")
    assert latest.is_symlink and latest.linked_to == f"{TOOLKIT}/{VERSION}"
    info = host.file(f"{TOOLKIT}/{VERSION}/{host.system_info.arch}-linux/ascend_toolkit_install.info")
    assert f"version={VERSION}" in info.content_string.splitlines()
    assert host.file(f"{TOOLKIT}/set_env.sh").is_file


def test_kernels_and_nnal_installed(host):
    assert (
        host.file(f"{TOOLKIT}/{VERSION}/opp_kernel/version.info").content_string.strip()
        == f"Version={VERSION}"
    )
    assert host.file(f"{ASCEND}/nnal/version.info").content_string.strip() == f"Version={VERSION}"


def test_driver_left_alone(host):
    assert host.file(f"{ASCEND}/driver/version.info").content_string.strip() == "Version=24.1.rc1"


def test_staging_directory_private(host):
    d = host.file("/var/cache/ml-workshop/ascend")
    assert d.is_directory and d.user == "root" and d.mode == 0o700
    for name in _packages(host).values():
        f = host.file(f"/var/cache/ml-workshop/ascend/{name}")
        assert f.is_file and f.user == "root" and f.mode == 0o700


def test_profile_script(host):
    f = host.file("/etc/profile.d/ascend-cann.sh")
    assert f.user == "root" and f.group == "root" and f.mode == 0o644
    assert "Managed by ml-workshop" in f.content_string
    assert f". {TOOLKIT}/set_env.sh" in f.content_string


@pytest.mark.parametrize("user", ["root", "HwHiAiUser"])
def test_login_shells_get_cann_environment(host, user):
    out = host.check_output(f"su - {user} -c 'echo $ASCEND_TOOLKIT_HOME; echo $LD_LIBRARY_PATH'")
    home, ld_path = out.splitlines()
    assert home == f"{TOOLKIT}/latest"
    assert f"{ASCEND}/driver/lib64/driver" in ld_path.split(":")


def test_local_fact_published(host):
    """/etc/ansible/facts.d/ascend_cann.fact: what other roles read as ansible_local.ascend_cann."""
    f = host.file("/etc/ansible/facts.d/ascend_cann.fact")
    assert f.user == "root" and f.mode == 0o644
    fact = json.loads(f.content_string)
    assert fact == {"version": VERSION, "toolkit_home": f"{TOOLKIT}/latest"}
    assert host.file(
        f"{fact['toolkit_home']}/{host.system_info.arch}-linux/ascend_toolkit_install.info"
    ).is_file
