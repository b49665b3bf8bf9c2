"""Filters of the images role. The logic lives in src/ml_workshop/npu.py (unit-tested in
tests/test_npu.py); this file only exposes it to Jinja."""

import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "src")
if os.path.isdir(_SRC) and os.path.abspath(_SRC) not in sys.path:
    sys.path.insert(0, os.path.abspath(_SRC))

from ml_workshop import npu  # noqa: E402


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
        }
