"""Filters of the hub role. The logic lives in src/ml_workshop (alloc.py, unit-tested in
tests/test_alloc.py) and is the same code the spawner runs; this file only exposes it to Jinja."""

import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "src")
if os.path.isdir(_SRC) and os.path.abspath(_SRC) not in sys.path:
    sys.path.insert(0, os.path.abspath(_SRC))

from ml_workshop import alloc  # noqa: E402


class FilterModule:
    """hub_* filters."""

    def filters(self):
        return {
            "hub_npu_settings_problems": alloc.validate_npu_settings,
        }
