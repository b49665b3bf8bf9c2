"""Unit tests for ml_workshop.npu (the Ascend roles' parsing and decision logic)."""

import pytest

from ml_workshop import npu

NPU_SMI_910B = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 24.1.RC2                          Version: 24.1.RC2                                    |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B3               | OK            | 70.5        42                0    / 0             |
| 0                         | 0000:C1:00.0  | 0           4252 / 15137      0    / 32768         |
+===========================+===============+====================================================+
| 1     910B3               | Alarm         | 68.1        41                0    / 0             |
| 0                         | 0000:C2:00.0  | 0           4250 / 15137      0    / 32768         |
+===========================+===============+====================================================+
| 2     910B3               | Warning       | 68.1        41                0    / 0             |
| 0                         | 0000:81:00.0  | 0           4250 / 15137      0    / 32768         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 12345         | python3                  | 1024                    |
+===========================+===============+====================================================+
| No running processes found in NPU 1                                                            |
+===========================+===============+====================================================+
"""


def test_parse_npu_smi_info_rows_and_version():
    r = npu.parse_npu_smi_info(NPU_SMI_910B)
    assert r["version"] == "24.1.RC2"
    assert r["npus"] == [
        {"npu": 0, "name": "910B3", "health": "OK"},
        {"npu": 1, "name": "910B3", "health": "Alarm"},
        {"npu": 2, "name": "910B3", "health": "Warning"},
    ]


def test_unhealthy_names_npu_and_state():
    assert npu.unhealthy_npus(NPU_SMI_910B) == ["NPU 1 (910B3): Alarm", "NPU 2 (910B3): Warning"]
    assert npu.unhealthy_npus(NPU_SMI_910B, healthy=("OK", "Warning")) == ["NPU 1 (910B3): Alarm"]


def test_parse_npu_smi_info_empty():
    assert npu.parse_npu_smi_info("") == {"version": "", "npus": []}


def test_parse_npu_smi_list():
    text = "\n\tTotal Count                    : 2\n\n\tNPU ID                         : 0\n\tChip Count : 1\n\n\tNPU ID : 1\n\tChip Count : 1\n"
    assert npu.parse_npu_smi_list(text) == {"total": 2, "ids": [0, 1]}


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("24.1.rc1", "24.1.RC1", 0),
        ("24.1.rc1", "24.1.rc2", -1),
        ("24.1.rc3", "24.1.0", -1),
        ("25.0.rc1", "24.1.rc1", 1),
        ("25.0.rc1.1", "25.0.rc1", 1),
        ("8.0.RC1.alpha001", "8.0.RC1", -1),
        ("8.0.RC1", "8.2.RC1", -1),
        ("8.5.0", "8.2.RC1", 1),
        ("7.1.0.6.220", "7.1.0.5.220", 1),
        ("7.7.0.1.231", "7.1.0.6.220", 1),
        ("23.0.3", "23.0.rc3", 1),
        ("8.0", "8.0.1", -1),
    ],
)
def test_version_compare(a, b, expected):
    assert npu.version_compare(a, b) == expected
    assert npu.version_compare(b, a) == -expected


def test_version_compare_empty_is_an_error():
    with pytest.raises(ValueError):
        npu.version_compare("", "1.0")


@pytest.mark.parametrize(
    "installed,wanted,force,action",
    [
        ("", "24.1.rc1", False, "install"),
        ("24.1.rc1", "24.1.RC1", False, "none"),
        ("23.0.3", "24.1.rc1", False, "upgrade"),
        ("25.0.rc1", "24.1.rc1", False, "refuse-downgrade"),
        ("25.0.rc1", "24.1.rc1", True, "downgrade"),
    ],
)
def test_install_action(installed, wanted, force, action):
    assert npu.install_action(installed, wanted, force) == action


def test_info_files():
    assert npu.info_version("Version=24.1.rc1\n") == "24.1.rc1"
    toolkit = "package_name=Ascend-cann-toolkit\nversion=8.0.RC1\narch=aarch64\n"
    assert npu.info_version(toolkit) == "8.0.RC1"
    assert npu.info_version("") == ""
    inst = npu.parse_key_values("UserName=HwHiAiUser\nUserGroup=HwHiAiUser\nDriver_Install_For_All=yes\n")
    assert inst["Driver_Install_For_All"] == "yes"


def test_firmware_versions():
    out = (
        "{\nGet system version(7.1.0.6.220) succeed, deviceId(0)\n"
        '\t{"device_id":0, "version":7.1.0.6.220}\n'
        "Get system version(7.1.0.5.220) succeed, deviceId(1)\n"
        '\t{"device_id":1, "version":7.1.0.5.220}\n}\n'
    )
    assert npu.parse_firmware_versions(out) == ["7.1.0.6.220", "7.1.0.5.220"]
    assert npu.firmware_version(out) == "7.1.0.5.220"
    assert npu.firmware_version("Get system version(7.7.0.1.231) succeed, deviceId(0)") == "7.7.0.1.231"
    assert npu.firmware_version("") == ""


def test_parse_pci_devices_and_chip():
    text = (
        "0000:00:00.0 0x8086 0x1234 0x0000\n"
        "0000:c1:00.0 0x19e5 0xd802 0x3000\n"
        "0000:81:00.0 0x19e5 0xd802 0x3000\n"
        "0000:02:00.0 0x19e5 0x1822 0x0000\n"  # a Huawei NIC, not an NPU
        "garbage\n"
    )
    found = npu.parse_pci_devices(text)
    assert [d["address"] for d in found] == ["0000:81:00.0", "0000:c1:00.0"]
    assert npu.npu_chip(found) == "910B"
    assert npu.npu_chip([]) == ""
    duo = npu.parse_pci_devices("0000:01:00.0 0x19e5 0xd500 0x0110\n")
    assert npu.npu_chip(duo) == "310P" and duo[0]["subsystem"] == "0x0110"


def test_davinci_ids():
    paths = ["/dev/davinci3", "/dev/davinci_manager", "/dev/davinci0", "/dev/davinci10", "/dev/davinci1"]
    assert npu.davinci_ids(paths) == [0, 1, 3, 10]


@pytest.mark.parametrize(
    "component,version,arch,chip,name",
    [
        ("driver", "24.1.rc1", "aarch64", "910B", "Ascend-hdk-910b-npu-driver_24.1.rc1_linux-aarch64.run"),
        ("driver", "24.1.rc1", "x86_64", "910B", "Ascend-hdk-910b-npu-driver_24.1.rc1_linux-x86-64.run"),
        ("firmware", "7.1.0.6.220", "x86_64", "910B", "Ascend-hdk-910b-npu-firmware_7.1.0.6.220.run"),
        ("toolkit", "8.0.RC1", "x86_64", "", "Ascend-cann-toolkit_8.0.RC1_linux-x86_64.run"),
        ("kernels", "8.0.RC1", "aarch64", "910B", "Ascend-cann-kernels-910b_8.0.RC1_linux.run"),
        ("kernels", "8.5.0", "aarch64", "910B", "Ascend-cann-910b-ops_8.5.0_linux-aarch64.run"),
        ("nnal", "8.5.0", "x86_64", "", "Ascend-cann-nnal_8.5.0_linux-x86_64.run"),
        ("docker-runtime", "6.0.0", "x86_64", "", "Ascend-docker-runtime_6.0.0_linux-x86_64.run"),
    ],
)
def test_match_package(component, version, arch, chip, name):
    others = [
        "Ascend-hdk-910b-npu-driver_23.0.3_linux-aarch64.run",
        "Ascend-hdk-310p-npu-driver_24.1.rc1_linux-aarch64.run",
        "Ascend-cann-toolkit_8.0.RC1_linux-aarch64.run" if arch == "x86_64" else "x.run",
    ]
    assert npu.match_package(others + ["/some/dir/" + name], component, version, arch, chip) == name
    assert npu.match_package(others, component, version, arch, chip) == ""


def test_driver_patterns_name_the_arch():
    assert npu.package_patterns("driver", "24.1.rc1", "x86_64", "910B") == [
        "Ascend-hdk-910b-npu-driver_24.1.rc1_linux-x86-64.run"
    ]
    with pytest.raises(ValueError):
        npu.package_patterns("bogus", "1", "x86_64")


def test_pairings():
    assert npu.pairing_problems("24.1.rc1", "7.1.0.6.220", "8.0.RC1") == []
    assert npu.pairing_problems("24.1.RC1", "7.1.0.6.220") == []
    assert npu.pairing_problems("24.1.rc1", "", "8.0.RC1") == []
    mism = npu.pairing_problems("25.0.rc1", "7.1.0.6.220", "8.0.RC1")
    assert len(mism) == 1 and mism[0].startswith("mismatched versions")
    unknown = npu.pairing_problems("26.0.rc9", "7.1.0.6.220")
    assert unknown == ["driver 26.0.rc9 is not in the table of known pairings"]
    table = [{"driver": "26.0.rc9", "firmware": "7.1.0.6.220", "cann": "9.0.0"}]
    assert npu.pairing_problems("26.0.rc9", "7.1.0.6.220", table=table) == []
    assert npu.pairing_problems() == []


def test_expand_visible_devices():
    present = [0, 1, 2, 3, 4, 5, 6, 7]
    assert npu.expand_visible_devices("all", present) == present
    assert npu.expand_visible_devices("0-2,5", present) == [0, 1, 2, 5]
    assert npu.expand_visible_devices([3, 1], present) == [1, 3]
    with pytest.raises(ValueError, match="not present"):
        npu.expand_visible_devices("7-8", present)
    with pytest.raises(ValueError):
        npu.expand_visible_devices("3-1", present)


PKGS = {"driver": "drv.run", "firmware": "fw.run", "toolkit": "tk.run", "kernels": "k.run", "nnal": "n.run"}


def test_driver_steps_fresh_driver_first_with_full_flags():
    steps = npu.driver_steps({"driver": "install", "firmware": "install"}, PKGS)
    assert [s["component"] for s in steps] == ["driver", "firmware"]
    assert steps[0]["args"] == [
        "--nox11",
        "--full",
        "--quiet",
        "--install-username=HwHiAiUser",
        "--install-usergroup=HwHiAiUser",
        "--install-for-all",
    ]
    assert steps[1]["args"] == ["--nox11", "--full", "--quiet"] and steps[1]["ok_rcs"] == [0, 2]


def test_driver_steps_upgrade_firmware_first():
    steps = npu.driver_steps({"driver": "upgrade", "firmware": "upgrade"}, PKGS)
    assert [(s["component"], s["args"]) for s in steps] == [
        ("firmware", ["--nox11", "--upgrade", "--quiet"]),
        ("driver", ["--nox11", "--upgrade", "--quiet"]),
    ]


def test_driver_steps_nothing_and_partial():
    assert npu.driver_steps({"driver": "none", "firmware": "none"}, PKGS) == []
    steps = npu.driver_steps({"driver": "none", "firmware": "upgrade"}, PKGS)
    assert [s["component"] for s in steps] == ["firmware"]
    steps = npu.driver_steps({"driver": "install", "firmware": "none"}, PKGS, "run", "u", "g", False)
    assert steps[0]["args"] == [
        "--nox11",
        "--run",
        "--quiet",
        "--install-username=u",
        "--install-usergroup=g",
    ]
    with pytest.raises(ValueError):
        npu.driver_steps({"driver": "refuse-downgrade", "firmware": "none"}, PKGS)


def test_cann_steps():
    steps = npu.cann_steps(["kernels", "toolkit"], {"toolkit": "upgrade", "kernels": "install"}, PKGS)
    assert [(s["component"], s["args"][1]) for s in steps] == [
        ("toolkit", "--upgrade"),
        ("kernels", "--install"),
    ]
    steps = npu.cann_steps(["toolkit", "kernels"], {"toolkit": "none", "kernels": "none"}, PKGS)
    assert steps == []
    steps = npu.cann_steps(["toolkit"], {"toolkit": "install"}, PKGS, for_all=False)
    assert steps[0]["args"] == ["--nox11", "--install", "--quiet"]


@pytest.mark.parametrize(
    "image,version",
    [
        ("quay.io/ascend/cann:8.2.rc1-910b-ubuntu22.04-py3.11", "8.2.rc1"),
        ("swr.cn-south-1.myhuaweicloud.com/ascendhub/cann:8.0.RC1-910b-ubuntu22.04-py3.10", "8.0.RC1"),
        ("ascend/cann:7.0.1", "7.0.1"),
        ("ml-workshop/platform:bookworm", ""),
        ("debian:bookworm-slim", ""),
        ("localhost:5000/cann", ""),
        ("quay.io/ascend/cann:latest", ""),
        ("quay.io/ascend/cann@sha256:0123", ""),
        ("", ""),
    ],
)
def test_image_cann_version(image, version):
    assert npu.image_cann_version(image) == version


def test_image_pairing_problems_name_the_variable_and_the_pairing():
    images = {
        "images_user_base_image": "quay.io/ascend/cann:8.2.rc1-910b-ubuntu22.04-py3.11",
        "images_hcie_base_image": "quay.io/ascend/cann:8.0.rc1-910b-ubuntu22.04-py3.10",
        "images_openclaw_base_image": "debian:bookworm-slim",
    }
    problems = npu.image_pairing_problems(images, "24.1.rc1")
    assert len(problems) == 1
    assert "images_user_base_image" in problems[0] and "8.2.rc1" in problems[0]
    assert "pairs with driver 25.0.rc1" in problems[0] and "24.1.rc1" in problems[0]
    assert npu.image_pairing_problems(images, "") == []  # the host's driver is not known
    assert (
        npu.image_pairing_problems({"images_user_base_image": images["images_user_base_image"]}, "25.0.rc1")
        == []
    )
    unknown = npu.image_pairing_problems({"v": "x/cann:9.9.9-910b"}, "24.1.rc1")
    assert unknown and "not in the table" in unknown[0]
    extra = [{"driver": "24.1.rc1", "firmware": "", "cann": "9.9.9"}]
    assert (
        npu.image_pairing_problems({"v": "x/cann:9.9.9-910b"}, "24.1.rc1", list(npu.KNOWN_PAIRINGS) + extra)
        == []
    )


def test_torch_npu_pair_follows_the_ascend_table():
    """torch + torch_npu per CANN (the Ascend Extension for PyTorch README's table)."""
    assert npu.torch_npu_pair("8.2.rc1") == ("2.6.0", "2.6.0")  # the tag's spelling, newest first
    assert npu.torch_npu_pair("8.2.RC1", "2.5.1") == ("2.5.1", "2.5.1.post1")
    assert npu.torch_npu_pair("8.0.RC2", "2.2.0") == ("2.2.0", "2.2.0.post2")  # the HCIE course's pair
    assert npu.torch_npu_pair("8.0.0") == ("2.4.0", "2.4.0.post2")
    with pytest.raises(ValueError, match="images_user_torch_version 2.9.0 is not supported by CANN 8.2.RC1"):
        npu.torch_npu_pair("8.2.RC1", "2.9.0")
    with pytest.raises(ValueError, match="CANN 7.0.0 is not in the torch/torch_npu table"):
        npu.torch_npu_pair("7.0.0")
    with pytest.raises(ValueError, match="images_user_base_image"):
        npu.torch_npu_pair("")
    for rows in npu.TORCH_NPU_PAIRS.values():  # newest PyTorch first, torch_npu of the same release
        versions = [t for t, _ in rows]
        assert versions == sorted(versions, key=npu.version_key, reverse=True)
        assert all(n.startswith(t) for t, n in rows)


def test_torch_npu_problems_name_the_variable():
    assert npu.torch_npu_problems("quay.io/ascend/cann:8.2.rc1-910b-ubuntu22.04-py3.11") == []
    (problem,) = npu.torch_npu_problems("debian:bookworm")
    assert "images_user_npu_stack" in problem and "images_user_base_image" in problem
