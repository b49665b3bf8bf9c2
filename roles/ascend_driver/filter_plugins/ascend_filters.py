"""Filters of the ascend_* roles. The logic lives in src/ml_workshop/npu.py (unit-tested in
tests/test_npu.py); this file only exposes it to Jinja. Symlinked into the other ascend_* roles."""

import sys

from ansible.errors import AnsibleFilterError


class _MissingPackage:
    """Stands in for an ml_workshop module that this Python cannot import: every filter that uses
    it fails with what to do, instead of Ansible skipping the plugin and reporting unknown filters."""

    def __init__(self, module: str, error: ImportError) -> None:
        self._message = (
            f"The {module} filters need the ml_workshop package, which {sys.executable} cannot import"
            f" ({error}): pip install the ml-workshop package (scripts/bootstrap.sh does it)."
        )

    def __getattr__(self, name: str) -> "_MissingPackage":
        return self

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise AnsibleFilterError(self._message)

    def __iter__(self):
        raise AnsibleFilterError(self._message)


try:
    from ml_workshop import npu
except ImportError as _error:  # the package is not installed where Ansible runs
    npu = _MissingPackage("ascend_*", _error)


def _pairing_problems(driver="", firmware="", cann="", extra=None):
    """Problems of a combination against the built-in table (npu.KNOWN_PAIRINGS) plus `extra` rows."""
    return npu.pairing_problems(
        driver or "", firmware or "", cann or "", list(npu.KNOWN_PAIRINGS) + list(extra or [])
    )


def _find_package(component, names, version, arch, chip=""):
    """match_package with the component first, for `map('ascend_find_package', names, ...)`."""
    return npu.match_package(names, component, version, arch, chip)


class FilterModule:
    """ascend_* filters (see ml_workshop.npu for each function's contract)."""

    def filters(self):
        return {
            "ascend_npu_smi_info": npu.parse_npu_smi_info,
            "ascend_unhealthy_npus": npu.unhealthy_npus,
            "ascend_pci_npus": npu.parse_pci_devices,
            "ascend_npu_chip": npu.npu_chip,
            "ascend_davinci_ids": npu.davinci_ids,
            "ascend_info_version": npu.info_version,
            "ascend_firmware_version": npu.firmware_version,
            "ascend_install_action": npu.install_action,
            "ascend_package_patterns": npu.package_patterns,
            "ascend_match_package": npu.match_package,
            "ascend_find_package": _find_package,
            "ascend_pairing_problems": _pairing_problems,
            "ascend_driver_steps": npu.driver_steps,
            "ascend_cann_steps": npu.cann_steps,
        }
