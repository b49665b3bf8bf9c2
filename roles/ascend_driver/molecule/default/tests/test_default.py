"""ascend_* roles on the EMULATED 8-NPU host, after converge (fresh install) and side_effect
(upgrade to driver 25.0.rc1 / firmware 7.7.0.1.231 / CANN 8.2.RC1)."""

import pytest


def test_run_user_and_group_have_fixed_ids(host):
    u = host.user("HwHiAiUser")
    assert u.uid == 1000 and u.gid == 1000 and u.group == "HwHiAiUser"
    assert host.group("HwHiAiUser").gid == 1000


def test_driver_files(host):
    assert host.file("/usr/local/Ascend/driver/version.info").content_string.strip() == "Version=25.0.rc1"
    info = host.file("/etc/ascend_install.info").content_string
    assert "UserName=HwHiAiUser" in info and "Driver_Install_For_All=yes" in info
    assert "Driver_Install_Type=full" in info


@pytest.mark.parametrize(
    "node", [f"davinci{i}" for i in range(8)] + ["davinci_manager", "devmm_svm", "hisi_hdc"]
)
def test_device_nodes_open_to_all(host, node):
    f = host.file(f"/dev/{node}")
    assert f.exists and f.user == "HwHiAiUser" and f.group == "HwHiAiUser"
    assert f.mode == 0o666  # --install-for-all
    assert host.check_output(f"stat -c %F /dev/{node}") == "character special file"


def test_firmware_reported_by_upgrade_tool(host):
    out = host.check_output("/usr/local/Ascend/driver/tools/upgrade-tool --device_index -1 --system_version")
    assert out.count("Get system version(7.7.0.1.231) succeed") == 8


def test_npu_smi_all_ok(host):
    out = host.check_output("npu-smi info")
    assert out.count("| OK ") == 8 and "Alarm" not in out


def test_cann_toolkit_and_kernels(host):
    tk = host.file("/usr/local/Ascend/ascend-toolkit/latest")
    assert tk.is_symlink and tk.linked_to == "/usr/local/Ascend/ascend-toolkit/8.2.RC1"
    arch = host.system_info.arch
    info = host.file(f"/usr/local/Ascend/ascend-toolkit/8.2.RC1/{arch}-linux/ascend_toolkit_install.info")
    assert "version=8.2.RC1" in info.content_string
    assert not host.file("/usr/local/Ascend/ascend-toolkit/8.0.RC1").exists
    kernels = host.file("/usr/local/Ascend/ascend-toolkit/8.2.RC1/opp_kernel/version.info")
    assert kernels.content_string.strip() == "Version=8.2.RC1"


def test_login_shell_gets_cann_environment(host):
    f = host.file("/etc/profile.d/ascend-cann.sh")
    assert "Managed by ml-workshop" in f.content_string and f.mode == 0o644
    out = host.check_output("su - HwHiAiUser -c 'echo $ASCEND_TOOLKIT_HOME'")
    assert out == "/usr/local/Ascend/ascend-toolkit/latest"


def test_reboot_still_pending(host):
    marker = host.file("/var/lib/ml-workshop/ascend-reboot-required")
    boot_id = host.file("/proc/sys/kernel/random/boot_id").content_string.strip()
    assert marker.content_string.strip() == boot_id


def test_docker_runtime_installed(host):
    f = host.file("/usr/local/Ascend/Ascend-Docker-Runtime/ascend-docker-runtime")
    assert f.is_file and f.mode == 0o755
