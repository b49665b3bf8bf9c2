"""Parsing and decision logic for the Ascend NPU roles (ascend_driver, ascend_cann,
ascend_docker_runtime). Pure functions, no I/O: the roles feed them command output and
file contents through the filter plugin roles/ascend_driver/filter_plugins/ascend_filters.py.

Sources for the formats are in docs/ascend.md (cited per function).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .alloc import parse_id_list

# PCI vendor id of Huawei and the device ids of the Ascend chips
# (docs/ascend.md#hardware-detection, ascend-deployer playbooks/facts/npu_info.fact.j2).
HUAWEI_PCI_VENDOR = 0x19E5
PCI_DEVICE_CHIPS = {
    0xD100: "310",
    0xD500: "310P",
    0xD801: "910",
    0xD802: "910B",
}
# Chip family as it appears in package file names (Ascend-hdk-910b-npu-driver_..., docs/ascend.md#packages).
CHIP_PACKAGE_NAMES = {"310": "310", "310P": "310p", "910": "910", "910B": "910b"}

# Known driver / firmware / CANN pairings for 910B (docs/ascend.md#versions-and-pairings).
KNOWN_PAIRINGS = [
    {"cann": "7.0.1", "driver": "23.0.3", "firmware": "7.1.0.5.220"},
    {"cann": "8.0.RC1", "driver": "24.1.rc1", "firmware": "7.1.0.6.220"},
    {"cann": "8.2.RC1", "driver": "25.0.rc1", "firmware": "7.7.0.1.231"},
]

HEALTH_STATES = ("OK", "Warning", "Alarm", "Critical")


# ---------------------------------------------------------------------------------------------
# Versions
# ---------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[0-9]+|[a-z]+")


def _token_key(tok: str) -> tuple[int, int, int | str]:
    """Rank of one dot-separated part. Ascend versions: 24.1.rc1 < 24.1.rc2 < 24.1.0,
    8.0.RC1.alpha001 < 8.0.RC1, 7.1.0.6.220. Pre-release words rank below the end of the
    version, numbers above it."""
    m = re.fullmatch(r"(alpha|beta|b|t|rc|spc)?0*([0-9]*)", tok)
    if not m:
        return (1, 0, tok)  # unknown word: between pre-releases and the end
    word, num = m.group(1), int(m.group(2) or 0)
    if word in ("alpha", "t"):
        return (0, 0, num)
    if word in ("beta", "b"):
        return (0, 1, num)
    if word == "rc":
        return (0, 2, num)
    if word == "spc":  # service pack: after the release it patches
        return (3, 0, num)
    return (4, num, "")


_END = (2, 0, "")


def version_key(version: str) -> list[tuple[int, int, int | str]]:
    """Sort key for an Ascend version string (case-insensitive)."""
    v = str(version).strip().lower()
    if not v:
        raise ValueError("empty version")
    parts = []
    for piece in re.split(r"[.\-_]", v):
        if piece == "":
            continue
        # "rc1" stays one token, "1rc1" becomes 1, rc1
        subs = re.findall(r"[a-z]+[0-9]*|[0-9]+", piece)
        parts.extend(subs)
    return [_token_key(p) for p in parts]


def version_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as a is older, equal to or newer than b."""
    ka, kb = version_key(a), version_key(b)
    n = max(len(ka), len(kb))
    ka += [_END] * (n - len(ka))
    kb += [_END] * (n - len(kb))
    return (ka > kb) - (ka < kb)


def install_action(installed: str, wanted: str, force: bool = False) -> str:
    """What to do with a component: 'install' (nothing installed), 'none' (same version),
    'upgrade' (wanted is newer), 'downgrade' (wanted is older and force is set) or
    'refuse-downgrade' (older, not forced). docs/ascend.md#versions-and-pairings: matching versions mean nothing runs;
    the vendor installers take --upgrade for a different version over an installed one."""
    installed = (installed or "").strip()
    if not installed:
        return "install"
    c = version_compare(wanted, installed)
    if c == 0:
        return "none"
    if c > 0:
        return "upgrade"
    return "downgrade" if force else "refuse-downgrade"


# ---------------------------------------------------------------------------------------------
# Files written by the vendor packages (docs/ascend.md#installed-versions)
# ---------------------------------------------------------------------------------------------
def parse_key_values(text: str) -> dict[str, str]:
    """KEY=VALUE lines (driver/version.info, /etc/ascend_install.info,
    ascend_toolkit_install.info). Keys keep their case; blank and # lines are skipped."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip().strip('"')
    return out


def info_version(text: str) -> str:
    """The version in a version.info / *_install.info file: `Version=` (driver) or
    `version=` (toolkit). Empty string when absent."""
    kv = parse_key_values(text)
    for k in ("Version", "version", "VERSION"):
        if kv.get(k):
            return kv[k]
    return ""


_FW_VERSION = re.compile(r"\"version\"\s*:\s*\"?([0-9A-Za-z.]+)\"?")
_FW_SYSTEM = re.compile(r"Get system version\(([^)]+)\)")


def parse_firmware_versions(text: str) -> list[str]:
    """Firmware versions reported by `upgrade-tool --device_index -1 --system_version`
    (docs/ascend.md#installed-versions, ascend-deployer task_firmware.yml), one per device, in order."""
    found = _FW_VERSION.findall(text or "")
    if not found:
        found = _FW_SYSTEM.findall(text or "")
    return [v.strip() for v in found]


def firmware_version(text: str) -> str:
    """The single firmware version of the host ('' when none is reported). Devices reporting
    different versions: the oldest one, so an upgrade brings every device up."""
    versions = parse_firmware_versions(text)
    if not versions:
        return ""
    oldest = versions[0]
    for v in versions[1:]:
        if version_compare(v, oldest) < 0:
            oldest = v
    return oldest


# ---------------------------------------------------------------------------------------------
# npu-smi (docs/ascend.md#npu-smi, format from gpustack tests/detectors/npu_smi/data)
# ---------------------------------------------------------------------------------------------
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")


def _table_rows(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """The rows of npu-smi's tables that start with an id: (cells, words of the first cell)."""
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 3:
            continue
        first = cells[0].split()
        if first and first[0].isdigit():
            yield cells, first


def parse_npu_smi_info(text: str) -> dict[str, Any]:
    """Parse `npu-smi info`. Returns {'version': str, 'npus': [{'npu': int, 'name': str,
    'health': str}, ...]} in table order. The first row of each NPU is
    `| <id> <name> | <health> | ...`; its second row has the chip id and the bus id."""
    m = re.search(r"npu-smi\s+([0-9][0-9A-Za-z.]*)", text or "")
    version = m.group(1) if m else ""
    npus = []
    for cells, first in _table_rows(text):
        if len(first) != 2:
            continue
        health = cells[1]
        if not health or _BUS_ID.match(health) or health.lower() in ("health", "bus-id"):
            continue
        if health.isdigit():  # process table rows: | NPU Chip | pid | ...
            continue
        npus.append({"npu": int(first[0]), "name": first[1], "health": health})
    return {"version": version, "npus": npus}


_FIRST_ROW_VALUES = re.compile(r"^(\S+)\s+(\S+)")  # Power(W) Temp(C) [Hugepages used / total]
_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")  # "4252 / 15137", "61258/ 65536"


def _number(text: str) -> float | None:
    """A number of npu-smi's table, or None for its placeholders (NA, -, N/A)."""
    try:
        return float(text)
    except ValueError:
        return None


def parse_npu_smi_chips(text: str) -> list[dict[str, Any]]:
    """Parse `npu-smi info` into one dict per chip, in table order, with what the organiser's
    dashboard shows (docs/ascend.md#npu-smi):

    {'npu': int, 'chip': int, 'phy_id': int | None, 'name': str, 'health': str, 'bus_id': str,
     'power_w', 'temp_c', 'aicore_percent': float | None,
     'memory_used_mb', 'memory_total_mb', 'hbm_used_mb', 'hbm_total_mb': int | None}

    A chip is two rows: `| <npu> <name> | <health> | <power> <temp> <hugepages used> / <total> |`
    then `| <chip> [<phy-id>] | <bus-id> | <aicore> <memory used> / <total> [<hbm used> / <total>] |`
    (310P cards have no HBM column; a card with two chips, e.g. Atlas 900 A3, repeats the NPU id
    with chip 0 and 1; a chip's power may be `-`). Process-table rows are not chips."""
    chips: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for cells, first in _table_rows(text):
        if _BUS_ID.match(cells[1]):
            if pending is None:
                continue
            chip = pending
            pending = None
            chip["chip"] = int(first[0])
            chip["phy_id"] = int(first[1]) if len(first) > 1 and first[1].isdigit() else None
            chip["bus_id"] = cells[1]
            values = cells[2].split()
            chip["aicore_percent"] = _number(values[0]) if values else None
            pairs = _PAIR.findall(cells[2])
            if pairs:
                chip["memory_used_mb"], chip["memory_total_mb"] = int(pairs[0][0]), int(pairs[0][1])
            if len(pairs) > 1:
                chip["hbm_used_mb"], chip["hbm_total_mb"] = int(pairs[1][0]), int(pairs[1][1])
            chips.append(chip)
            continue
        health = cells[1]
        if len(first) != 2 or first[1].isdigit() or not health or health.isdigit():
            continue  # headers, process rows (`| <npu> <chip> | <pid> | ...`)
        if health.lower() in ("health", "bus-id"):
            continue
        m = _FIRST_ROW_VALUES.match(cells[2])
        pending = {
            "npu": int(first[0]),
            "chip": 0,
            "phy_id": None,
            "name": first[1],
            "health": health,
            "bus_id": "",
            "power_w": _number(m.group(1)) if m else None,
            "temp_c": _number(m.group(2)) if m else None,
            "aicore_percent": None,
            "memory_used_mb": None,
            "memory_total_mb": None,
            "hbm_used_mb": None,
            "hbm_total_mb": None,
        }
    return chips


def unhealthy_npus(text: str, healthy: Iterable[str] = ("OK",)) -> list[str]:
    """`NPU <id> (<name>): <health>` for every NPU whose health is not in `healthy`."""
    return [
        f"NPU {n['npu']} ({n['name']}): {n['health']}"
        for n in parse_npu_smi_info(text)["npus"]
        if n["health"] not in healthy
    ]


def parse_npu_smi_list(text: str) -> dict[str, Any]:
    """`npu-smi info -l`: 'Total Count : 8' then 'NPU ID : N' / 'Chip Count : 1' blocks."""
    total = None
    ids = []
    for line in (text or "").splitlines():
        m = re.match(r"\s*Total Count\s*:\s*(\d+)", line)
        if m:
            total = int(m.group(1))
        m = re.match(r"\s*NPU ID\s*:\s*(\d+)", line)
        if m:
            ids.append(int(m.group(1)))
    return {"total": total if total is not None else len(ids), "ids": ids}


# ---------------------------------------------------------------------------------------------
# Hardware detection: /sys/bus/pci/devices/*/{vendor,device,subsystem_device}
# ---------------------------------------------------------------------------------------------
def parse_pci_devices(text: str) -> list[dict[str, Any]]:
    """Lines `<address> <vendor> <device> [<subsystem_device>]` (hex, as in sysfs) ->
    Ascend NPUs: [{'address', 'device', 'chip', 'subsystem'}]. Other devices are dropped."""
    found = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            vendor, device = int(parts[1], 16), int(parts[2], 16)
        except ValueError:
            continue
        if vendor != HUAWEI_PCI_VENDOR or device not in PCI_DEVICE_CHIPS:
            continue
        sub = parts[3].lower() if len(parts) > 3 else ""
        found.append(
            {
                "address": parts[0],
                "device": f"0x{device:04x}",
                "chip": PCI_DEVICE_CHIPS[device],
                "subsystem": sub,
            }
        )
    return sorted(found, key=lambda d: d["address"])


def npu_chip(pci: Sequence[Mapping[str, Any]]) -> str:
    """Chip type of the host from parse_pci_devices() ('' when no NPU). Mixed chips: the most
    common one. 310P with subsystem 0x0110 is a 300I Duo card, still chip 310P."""
    if not pci:
        return ""
    counts = {}
    for d in pci:
        counts[d["chip"]] = counts.get(d["chip"], 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def chip_package_name(chip: str) -> str:
    """Chip as written in package file names: 910B -> 910b."""
    try:
        return CHIP_PACKAGE_NAMES[chip]
    except KeyError:
        return str(chip).lower()


def davinci_ids(paths: Iterable[str] | None) -> list[int]:
    """Sorted NPU ids from device node paths (/dev/davinciN; davinci_manager is not an NPU)."""
    ids = set()
    for p in paths or []:
        m = re.search(r"/davinci([0-9]+)$", str(p))
        if m:
            ids.add(int(m.group(1)))
    return sorted(ids)


# ---------------------------------------------------------------------------------------------
# Packages (docs/ascend.md#packages)
# ---------------------------------------------------------------------------------------------
def driver_arch(arch: str) -> str:
    """CPU architecture as the driver/firmware packages write it: x86_64 -> x86-64."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    return "x86-64" if arch == "x86_64" else arch


def cann_arch(arch: str) -> str:
    """CPU architecture as the CANN packages write it (aarch64 / x86_64)."""
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)


def package_patterns(component: str, version: str, arch: str, chip: str = "") -> list[str]:
    """Shell glob patterns (tried in order) for a component's .run file.
    component: driver, firmware, toolkit, kernels, nnal, docker-runtime."""
    c = chip_package_name(chip) if chip else "*"
    da, ca = driver_arch(arch), cann_arch(arch)
    if component == "driver":
        return [f"Ascend-hdk-{c}-npu-driver_{version}_linux-{da}.run"]
    if component == "firmware":
        return [f"Ascend-hdk-{c}-npu-firmware_{version}.run"]
    if component == "toolkit":
        return [f"Ascend-cann-toolkit_{version}_linux-{ca}.run"]
    if component == "kernels":
        # until CANN 8.2: Ascend-cann-kernels-910b_<ver>_linux.run (sometimes with -<arch>);
        # from 8.5: Ascend-cann-910b-ops_<ver>_linux-<arch>.run
        return [
            f"Ascend-cann-kernels-{c}_{version}_linux.run",
            f"Ascend-cann-kernels-{c}_{version}_linux-{ca}.run",
            f"Ascend-cann-{c}-ops_{version}_linux-{ca}.run",
        ]
    if component == "nnal":
        return [f"Ascend-cann-nnal_{version}_linux-{ca}.run"]
    if component == "docker-runtime":
        return [f"Ascend-docker-runtime_{version}_linux-{ca}.run"]
    raise ValueError(f"unknown component {component!r}")


def match_package(
    names: Iterable[str] | None, component: str, version: str, arch: str, chip: str = ""
) -> str:
    """The first file name in `names` matching the component's patterns ('' when none).
    Exact (case-sensitive) glob match on the base name."""
    import fnmatch

    bases = sorted({str(n).rsplit("/", 1)[-1] for n in names or []})
    for pat in package_patterns(component, version, arch, chip):
        for b in bases:
            if fnmatch.fnmatchcase(b, pat):
                return b
    return ""


# ---------------------------------------------------------------------------------------------
# Pairings
# ---------------------------------------------------------------------------------------------
def _same(a: str, b: str) -> bool:
    try:
        return version_compare(a, b) == 0
    except ValueError:
        return False


def pairing_problems(
    driver: str = "",
    firmware: str = "",
    cann: str = "",
    table: Iterable[Mapping[str, Any]] | None = None,
) -> list[str]:
    """Messages for a driver/firmware/CANN combination that is not a known pairing.
    Empty components are not checked. A component absent from the table is 'unknown';
    components known but from different rows are a 'mismatch'."""
    table = KNOWN_PAIRINGS if table is None else table
    given = {k: v for k, v in (("driver", driver), ("firmware", firmware), ("cann", cann)) if v}
    if len(given) < 1:
        return []
    for row in table:
        if all(_same(v, str(row.get(k, ""))) for k, v in given.items()):
            return []
    problems = []
    for k, v in given.items():
        if not any(_same(v, str(row.get(k, ""))) for row in table):
            problems.append(f"{k} {v} is not in the table of known pairings")
    if not problems and len(given) > 1:
        desc = ", ".join(f"{k} {v}" for k, v in given.items())
        pairs = "; ".join(
            f"driver {r.get('driver')} + firmware {r.get('firmware')} + CANN {r.get('cann')}" for r in table
        )
        problems.append(f"mismatched versions: {desc} are not a known pairing (known: {pairs})")
    return problems


def expand_visible_devices(spec: str | Sequence[int | str], present: Iterable[int | str] | None) -> list[int]:
    """ASCEND_VISIBLE_DEVICES for the Ascend Docker Runtime, which rejects `all`
    (docs/ascend.md#ascend_visible_devices): 'all' -> every present id; '0,2', '0-3', [0, 1] -> explicit sorted ids,
    each of which must be present."""
    present = sorted(int(i) for i in present or [])
    if isinstance(spec, (list, tuple)):
        ids = [int(i) for i in spec]
    else:
        s = str(spec).strip()
        if s.lower() == "all":
            return present
        ids = parse_id_list(s)
    missing = sorted(set(ids) - set(present))
    if missing:
        raise ValueError(f"NPU ids {missing} are not present on this host (present: {present})")
    return sorted(set(ids))


# ---------------------------------------------------------------------------------------------
# Installer runs (docs/ascend.md#install-order, ascend-deployer task_driver_common.yml / task_firmware.yml /
# task_toolkit.yml)
# ---------------------------------------------------------------------------------------------
def driver_steps(
    actions: Mapping[str, str],
    packages: Mapping[str, str],
    install_type: str = "full",
    user: str = "HwHiAiUser",
    group: str = "HwHiAiUser",
    for_all: bool = True,
) -> list[dict[str, Any]]:
    """Ordered installer runs for the driver and firmware. actions: {'driver': a, 'firmware': a}
    with a from install_action() ('refuse-downgrade' must have been refused before).
    Fresh host (driver action 'install'): driver then firmware. Otherwise firmware then driver.
    Driver: fresh `--nox11 --<type> --quiet --install-username= --install-usergroup=
    [--install-for-all]`, else `--nox11 --upgrade --quiet`. Firmware: `--full` when none is
    reported, else `--upgrade`; return codes 0 and 2 are success."""
    for comp, act in actions.items():
        if act == "refuse-downgrade":
            raise ValueError(f"{comp}: downgrade not allowed")
    da, fa = actions.get("driver", "none"), actions.get("firmware", "none")
    driver = {
        "component": "driver",
        "action": da,
        "file": packages.get("driver", ""),
        "args": (
            [
                "--nox11",
                f"--{install_type}",
                "--quiet",
                f"--install-username={user}",
                f"--install-usergroup={group}",
            ]
            + (["--install-for-all"] if for_all else [])
        )
        if da == "install"
        else ["--nox11", "--upgrade", "--quiet"],
        "ok_rcs": [0],
    }
    firmware = {
        "component": "firmware",
        "action": fa,
        "file": packages.get("firmware", ""),
        "args": ["--nox11", "--full", "--quiet"] if fa == "install" else ["--nox11", "--upgrade", "--quiet"],
        "ok_rcs": [0, 2],
    }
    order = [driver, firmware] if da == "install" else [firmware, driver]
    return [s for s in order if s["action"] != "none"]


def cann_steps(
    components: Iterable[str], actions: Mapping[str, str], packages: Mapping[str, str], for_all: bool = True
) -> list[dict[str, Any]]:
    """Ordered installer runs for CANN components (toolkit, kernels, nnal — in that order).
    Toolkit: `--install` fresh, `--upgrade` over an installed one; kernels/ops and nnal go into
    the toolkit's version directory, so they always take `--install`."""
    order = [c for c in ("toolkit", "kernels", "nnal") if c in components]
    steps = []
    for c in order:
        a = actions.get(c, "none")
        if a == "refuse-downgrade":
            raise ValueError(f"{c}: downgrade not allowed")
        if a == "none":
            continue
        mode = "--upgrade" if (c == "toolkit" and a != "install") else "--install"
        steps.append(
            {
                "component": c,
                "action": a,
                "file": packages.get(c, ""),
                "args": ["--nox11", mode, "--quiet"] + (["--install-for-all"] if for_all else []),
                "ok_rcs": [0],
            }
        )
    return steps


# ---------------------------------------------------------------------------------------------
# CANN base images against the host's driver (the images role's preflight)
# ---------------------------------------------------------------------------------------------
_CANN_TAG = re.compile(r"^([0-9]+\.[0-9]+\.(?:rc[0-9]+|[0-9]+)(?:\.[0-9a-z]+)?)(?=$|[-_])", re.IGNORECASE)


def image_cann_version(image: str) -> str:
    """The CANN version of a CANN base image, read from its tag: an image whose repository is
    `.../cann` and whose tag starts with the version (quay.io/ascend/cann:8.2.rc1-910b-ubuntu22.04-py3.11
    -> 8.2.rc1; ascendhub's .../cann:8.0.RC1-910b-... -> 8.0.RC1). '' for any other image (not a
    CANN image, no tag, a digest only, or a tag that does not start with a version)."""
    ref = str(image or "").strip().split("@", 1)[0]
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:  # no tag (the colon belonged to a registry port)
        return ""
    if name.rsplit("/", 1)[-1].lower() != "cann":
        return ""
    m = _CANN_TAG.match(tag)
    return m.group(1) if m else ""


def image_pairing_problems(
    images: Mapping[str, str] | None, driver: str, table: Iterable[Mapping[str, Any]] | None = None
) -> list[str]:
    """Messages for base images whose CANN does not pair with the host's driver.
    images: {variable name: image reference}; driver: the host's driver version ('' = not
    known, nothing checked). Images that are not CANN images are not checked. Each message
    names the variable, the CANN version, the drivers it pairs with and the host's driver."""
    table = KNOWN_PAIRINGS if table is None else list(table)
    driver = str(driver or "").strip()
    problems = []
    if not driver:
        return problems
    for var, image in (images or {}).items():
        cann = image_cann_version(image)
        if not cann or not pairing_problems(driver=driver, cann=cann, table=table):
            continue
        drivers = sorted({str(r.get("driver")) for r in table if _same(cann, str(r.get("cann", "")))})
        pairs = (
            f"which pairs with driver {' or '.join(drivers)}"
            if drivers
            else "which is not in the table of known pairings"
        )
        problems.append(f"{var} {image} carries CANN {cann}, {pairs}, but the host's driver is {driver}")
    return problems


# ---------------------------------------------------------------------------------------------
# PyTorch on the NPU: torch + torch_npu per CANN version
# ---------------------------------------------------------------------------------------------
# The "Ascend Auxiliary Software" table of the Ascend Extension for PyTorch README
# (https://github.com/Ascend/pytorch#ascend-auxiliary-software): for each CANN release the PyTorch
# versions it supports and the torch_npu package of each, newest PyTorch first.
TORCH_NPU_PAIRS: dict[str, list[tuple[str, str]]] = {
    "8.5.0": [
        ("2.9.0", "2.9.0"),
        ("2.8.0", "2.8.0.post2"),
        ("2.7.1", "2.7.1.post2"),
        ("2.6.0", "2.6.0.post5"),
    ],
    "8.3.RC1": [("2.8.0", "2.8.0"), ("2.7.1", "2.7.1"), ("2.6.0", "2.6.0.post3"), ("2.1.0", "2.1.0.post17")],
    "8.2.RC1": [("2.6.0", "2.6.0"), ("2.5.1", "2.5.1.post1"), ("2.1.0", "2.1.0.post13")],
    "8.1.RC1": [
        ("2.5.1", "2.5.1"),
        ("2.4.0", "2.4.0.post4"),
        ("2.3.1", "2.3.1.post6"),
        ("2.1.0", "2.1.0.post12"),
    ],
    "8.0.0": [("2.4.0", "2.4.0.post2"), ("2.3.1", "2.3.1.post4"), ("2.1.0", "2.1.0.post10")],
    "8.0.RC2": [("2.3.1", "2.3.1"), ("2.2.0", "2.2.0.post2"), ("2.1.0", "2.1.0.post6")],
    "8.0.RC1": [("2.2.0", "2.2.0"), ("2.1.0", "2.1.0.post3")],
}


def torch_npu_pair(cann: str, torch: str = "") -> tuple[str, str]:
    """(torch, torch_npu) for a CANN version: `torch` when given, else the newest PyTorch that
    CANN supports. ValueError, naming the images role's variables, when the table has no such pair."""
    cann = str(cann or "").strip()
    if not cann:
        raise ValueError(
            "images_user_npu_stack needs the CANN version of the student image's base, read from a CANN "
            "image's tag (images_user_base_image, e.g. quay.io/ascend/cann:8.2.rc1-910b-ubuntu22.04-py3.11)"
        )
    rows = next((v for k, v in TORCH_NPU_PAIRS.items() if _same(k, cann)), None)
    if rows is None:
        raise ValueError(
            f"images_user_npu_stack: CANN {cann} is not in the torch/torch_npu table "
            f"(known: {', '.join(TORCH_NPU_PAIRS)}; ml_workshop.npu.TORCH_NPU_PAIRS)"
        )
    if not torch:
        return rows[0]
    for t, n in rows:
        if _same(t, str(torch)):
            return t, n
    raise ValueError(
        f"images_user_torch_version {torch} is not supported by CANN {cann} "
        f"(it supports PyTorch {', '.join(t for t, _ in rows)})"
    )


def torch_npu_problems(image: str, torch: str = "") -> list[str]:
    """The images role's preflight: [] when a pair can be chosen for the base image's CANN."""
    try:
        torch_npu_pair(image_cann_version(image), torch)
    except ValueError as e:
        return [str(e)]
    return []
