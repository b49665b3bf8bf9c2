"""Make a `docker save` tarball of an image built FROM another one thin: drop the layer files the
base image already has.

The HCIE Lab and OpenClaw images are built FROM the student image, so a plain `docker save` of
each carries the student image's ~2 GB again, and every scenario that loads all three would read
it three times. `docker load` looks each layer up by its chain id first and reads the layer file
only when the layer is missing (moby image/tarexport/load.go), so a tarball without the base's
layers loads as long as the base image is loaded before it; load-test-images.yml loads in the
manifest's order and checks the base is in the list.

Usage: thin_image_tar.py TARBALL BASE_IMAGE  (rewrites TARBALL in place; prints what it dropped)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile


def base_diff_ids(image: str) -> set[str]:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out) or [])


def layers_to_drop(manifest: list[dict], configs: dict[str, dict], base: set[str]) -> set[str]:
    """The layer paths (e.g. "<id>/layer.tar") of the saved images whose diff id the base has."""
    drop: set[str] = set()
    for entry in manifest:
        diff_ids = configs[entry["Config"]]["rootfs"]["diff_ids"]
        if len(diff_ids) != len(entry["Layers"]):
            raise ValueError(f"{entry['Config']}: {len(diff_ids)} diff ids but {len(entry['Layers'])} layers")
        drop.update(path for path, diff in zip(entry["Layers"], diff_ids, strict=True) if diff in base)
    return drop


def thin(path: str, base: set[str]) -> tuple[int, int]:
    """Rewrite the tarball without the base's layer files: (members dropped, bytes dropped)."""
    with tarfile.open(path) as src:
        manifest = json.load(src.extractfile("manifest.json"))  # type: ignore[arg-type]
        configs = {e["Config"]: json.load(src.extractfile(e["Config"])) for e in manifest}  # type: ignore[arg-type]
        drop = layers_to_drop(manifest, configs, base)
        dirs = {p.rsplit("/", 1)[0] for p in drop}
        tmp = path + ".thin"
        dropped = size = 0
        with tarfile.open(tmp, "w") as dst:
            for member in src:
                top = member.name.split("/", 1)[0]
                if member.name in drop or (top in dirs and member.name != top and member.isfile()):
                    dropped += 1
                    size += member.size
                    continue
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    os.replace(tmp, path)
    return dropped, size


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    dropped, size = thin(argv[1], base_diff_ids(argv[2]))
    print(f"thin: dropped {dropped} files ({size / 2**20:.0f} MiB) that {argv[2]} has")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
