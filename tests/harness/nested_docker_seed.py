"""Seeds of a nested Docker engine's data: the test images loaded once, copied into the next instance.

A scenario instance runs its own Docker engine on a fresh named volume (/var/lib/docker) and
load-test-images.yml fills it with `docker load` of the harness's cached tarballs: ~3 GB through
`docker exec`, hashed and unpacked again for every instance of every scenario (half a minute to a
minute each on the test machine, under load more). The result is the same every time for the same
platform image and the same image ids, so the first instance that loads a set keeps a copy of its
engine's stopped data directory (a *seed*) and every later instance with the same set gets a copy
of the seed instead (`cp -a`: a few seconds).

  restore --container NAME --image ID...   copy the seed into the instance's volume; exit 3 when
                                           there is no seed or the engine is not fresh (then load)
  save    --container NAME --image ID...   keep the instance's engine data as the seed (once)

The seed's key is the instance's image id (its Docker version and storage driver) and the image
ids, so a rebuilt image or platform makes a new seed; the most recently used KEEP seeds are kept.
A seed holds the image store only: the engine's networks are left out (EXCLUDE), so the restored
engine chooses its bridge's subnet for its own instance, as a fresh one does.
The engine is stopped while its data is copied either way (systemctl in the instance).
Seeds live in $MLW_IMAGE_CACHE/seeds (default /var/cache/ml-workshop-test/images/seeds).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

NO_SEED = 3
KEEP = 3
# What a seed never carries: the engine's networks (network/: the default bridge's subnet is
# chosen at the first start to miss the instance's own addresses, so another instance on another
# network would get a bridge that collides with its eth0 — seen: apt hanging in a build, published
# ports not answering), and what belongs to one engine's life (containers, swarm state, tmp).
EXCLUDE = ("network", "swarm", "containers", "tmp")
FORMAT = "2"  # in the key and the marker: seeds of an older format are never used, and pruned
UNITS = ["docker.socket", "docker.service", "containerd.service"]


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


def seed_key(instance_image_id: str, image_ids: list[str]) -> str:
    return hashlib.sha256(json.dumps([FORMAT, instance_image_id, sorted(image_ids)]).encode()).hexdigest()[
        :24
    ]


def engine_volume(info: dict) -> Path | None:
    """The host directory behind the instance's /var/lib/docker (a volume or a bind mount)."""
    for mount in info.get("Mounts", []):
        if mount.get("Destination") == "/var/lib/docker" and mount.get("RW"):
            return Path(mount["Source"])
    return None


def inspect(container: str) -> dict:
    return json.loads(run("docker", "inspect", container).stdout)[0]


def in_instance(container: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("docker", "exec", container, *argv, check=check)


def engine_is_fresh(container: str) -> bool:
    """No image and no container in the nested engine: nothing a copy could lose."""
    images = in_instance(container, "docker", "images", "-aq", check=False)
    containers = in_instance(container, "docker", "ps", "-aq", check=False)
    return (
        images.returncode == 0
        and containers.returncode == 0
        and not (images.stdout + containers.stdout).strip()
    )


def stop_engine(container: str) -> None:
    in_instance(container, "systemctl", "stop", *UNITS, check=False)


def start_engine(container: str, timeout: float = 120) -> None:
    in_instance(container, "systemctl", "start", "docker.service")
    deadline = time.monotonic() + timeout
    while in_instance(container, "docker", "info", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise SystemExit(f"{container}: the nested Docker engine did not come back")
        time.sleep(1)


def copy_tree(src: Path, dst: Path, exclude: tuple[str, ...] = ()) -> None:
    """src's content into dst (which exists), owners, modes, links, xattrs and times kept; the
    top-level entries named in `exclude` are left out."""
    entries = sorted(str(p) for p in src.iterdir() if p.name not in exclude)
    if entries:
        run("cp", "-a", "--reflink=auto", *entries, f"{dst}/")


def empty_dir(path: Path) -> None:
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def prune(seeds: Path, keep: int) -> list[str]:
    """Remove all but the `keep` most recently used seeds, and unfinished copies."""
    done = sorted(
        (d for d in seeds.iterdir() if d.is_dir() and (d / "complete").exists()),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    current = [d for d in done if (d / "complete").read_text().startswith(f"format {FORMAT}\n")]
    gone = [d for d in done if d not in current[:keep]]
    gone += [d for d in seeds.iterdir() if d.is_dir() and ".tmp-" in d.name]
    for d in gone:
        shutil.rmtree(d, ignore_errors=True)
    return [d.name for d in gone]


def restore(container: str, seed: Path) -> int:
    if not (seed / "complete").exists():
        print(f"no seed {seed.name}: load the images")
        return NO_SEED
    volume = engine_volume(inspect(container))
    if volume is None or not engine_is_fresh(container):
        print(f"{container}: no /var/lib/docker volume, or its engine is not fresh: load the images")
        return NO_SEED
    with open(seed.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)  # a save elsewhere may prune, never under a copy
        if not (seed / "complete").exists():
            return NO_SEED
        os.utime(seed)  # most recently used
        stop_engine(container)
        try:
            empty_dir(volume)
            copy_tree(seed / "data", volume)
        finally:
            start_engine(container)
    print(f"{container}: engine data copied from seed {seed.name}")
    return 0


def save(container: str, seed: Path, keep: int) -> int:
    seeds = seed.parent
    seeds.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(seeds / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (seed / "complete").exists():
            print(f"seed {seed.name} exists")
            return 0
        volume = engine_volume(inspect(container))
        if volume is None:
            print(f"{container}: no /var/lib/docker volume: no seed")
            return 0
        tmp = seeds / f"{seed.name}.tmp-{os.getpid()}"
        (tmp / "data").mkdir(parents=True)
        stop_engine(container)
        try:
            copy_tree(volume, tmp / "data", exclude=EXCLUDE)
        finally:
            start_engine(container)
        (tmp / "complete").write_text(f"format {FORMAT}\n{container}\n")
        tmp.rename(seed)
        gone = prune(seeds, keep)
    print(f"seed {seed.name} saved from {container}" + (f"; removed {', '.join(gone)}" if gone else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("action", choices=["restore", "save"])
    p.add_argument("--container", required=True)
    p.add_argument("--image", action="append", required=True, help="an image id of the set (repeat)")
    p.add_argument(
        "--seeds",
        type=Path,
        default=Path(os.environ.get("MLW_IMAGE_CACHE", "/var/cache/ml-workshop-test/images")) / "seeds",
    )
    p.add_argument("--keep", type=int, default=KEEP)
    a = p.parse_args(argv)
    seed = a.seeds / seed_key(inspect(a.container)["Image"], a.image)
    if a.action == "restore":
        return restore(a.container, seed)
    return save(a.container, seed, a.keep)


if __name__ == "__main__":
    sys.exit(main())
