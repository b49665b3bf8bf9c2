"""Filters of the images role. The logic lives in src/ml_workshop/npu.py (unit-tested in
tests/test_npu.py); this file only exposes it to Jinja."""

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
    npu = _MissingPackage("images_*", _error)


def _cann_problems(images, driver="", extra=None):
    """Base images ({variable: image}) whose CANN does not pair with the host's driver, against
    the built-in table (npu.KNOWN_PAIRINGS) plus `extra` rows."""
    return npu.image_pairing_problems(
        images or {}, driver or "", list(npu.KNOWN_PAIRINGS) + list(extra or [])
    )


class FilterModule:
    """images_* filters (see ml_workshop.npu for each function's contract)."""

    def filters(self):
        return {
            "images_cann_pairing_problems": _cann_problems,
            "images_torch_npu_problems": npu.torch_npu_problems,
            "images_torch_npu_pair": lambda image, torch="": list(
                npu.torch_npu_pair(npu.image_cann_version(image), torch)
            ),
        }
