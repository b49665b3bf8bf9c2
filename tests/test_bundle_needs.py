"""bundle.yml against the repository's own inventory (cache1; npu1 and npu2): every role that
site.yml runs on a host says what it installs there, read from the roles' own variables (no
second list to drift), and no host's part is silently left out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _needs(tmp_path: Path, *extra: str) -> list[dict]:
    env = {**os.environ, "ANSIBLE_ROLES_PATH": str(REPO / "roles")}
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            str(REPO / "bundle.yml"),
            "-i",
            str(REPO / "inventory"),
            "-e",
            f"workshop_bundle_work_dir={tmp_path}",
            "-e",
            f"workshop_bundle_dir={tmp_path}/bundle",
            "-e",
            "workshop_bundle_needs_only=true",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return json.loads((tmp_path / "needs.json").read_text(encoding="utf-8"))


def test_every_role_of_the_default_site_names_its_needs(tmp_path):
    from ml_workshop.bundle import merge_needs

    needs = merge_needs(_needs(tmp_path))
    # the apt packages of workshop, cache_proxy, ascend_driver, docker and hub
    assert {
        "ca-certificates",
        "apt-cacher-ng",
        "nftables",
        "pciutils",
        "dkms",
        "docker.io",
        "rsync",
        "python3-venv",
    } <= set(needs["debs"])
    assert not [d for d in needs["debs"] if d.startswith("linux-headers")]  # the host's own kernel
    assert {"control", "devpi", "whistle-node", "hub", "students", "hcie-env0", "hcie-env1"} <= set(
        needs["wheels"]
    )
    assert "jupyterhub==5.5.4" in needs["wheels"]["hub"] and "ansible==12.3.0" in needs["wheels"]["control"]
    assert needs["npm"] == ["configurable-http-proxy@5.3.0", "whistle@2.10.10"]
    assert needs["images"] == ["ml-workshop-hcie", "ml-workshop-openclaw", "ml-workshop-user"]


def test_cluster_mode_adds_the_swarm_and_the_hub_hosts_needs(tmp_path):
    from ml_workshop.bundle import merge_needs

    per_server = merge_needs(_needs(tmp_path))
    cluster = merge_needs(_needs(tmp_path, "-e", "workshop_hub_mode=cluster"))
    assert "python3-docker" in cluster["debs"] and "python3-docker" not in per_server["debs"]
