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
import subprocess
import sys

from ml_workshop.bundle import layers_to_drop, thin_tarball

__all__ = ["base_diff_ids", "layers_to_drop", "thin"]


def base_diff_ids(image: str) -> set[str]:
    out = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{json .RootFS.Layers}}", image],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out) or [])


# The offline bundle thins its images the same way (ml_workshop.bundle, one implementation).
thin = thin_tarball


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    dropped, size = thin(argv[1], base_diff_ids(argv[2]))
    print(f"thin: dropped {dropped} files ({size / 2**20:.0f} MiB) that {argv[2]} has")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
