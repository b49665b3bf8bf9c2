"""Print the test images' recipe (the images_* variables in .config/molecule/config.yml) as JSON.

The shared molecule configuration is the one source of the test images' recipe; the harness's
outer build (scripts/build-test-images.sh) reads it here, interpolating ${VAR} and ${VAR:-default}
the way molecule does, so the images it builds hash the same as the ones the role renders
inside the instances.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import yaml

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Replace ${VAR} and ${VAR:-default} like molecule's interpolation does."""
    return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)


def recipe(config: Path, env: dict[str, str]) -> dict[str, object]:
    data = yaml.safe_load(interpolate(config.read_text(), env))
    all_vars = data["provisioner"]["inventory"]["group_vars"]["all"]
    keep = {"ansible_managed", "workshop_extra_ca_certificates"}
    return {k: v for k, v in all_vars.items() if k.startswith("images_") or k in keep}


if __name__ == "__main__":
    repo = Path(__file__).resolve().parents[2]
    print(json.dumps(recipe(repo / ".config/molecule/config.yml", dict(os.environ)), indent=2))
    sys.exit(0)
