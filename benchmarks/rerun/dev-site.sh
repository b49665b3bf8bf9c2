#!/bin/sh
# rerun.py against the site kept by `scripts/dev-site up` (molecule/default's three instances),
# through molecule's inventory, with the variables its group_vars read (MOLECULE_EPHEMERAL_DIRECTORY:
# the emulated Ascend packages). Run it through dev-site for the harness's environment:
#   scripts/dev-site run benchmarks/rerun/dev-site.sh [rerun.py options]
#   scripts/dev-site run benchmarks/rerun/dev-site.sh --limit mlw-site-default-npu2 --fact-cache /tmp/rerun-facts
# `scripts/dev-site run` does not go through molecule: the ephemeral directory is computed here
# as `scripts/dev-site suite` does (molecule's name for it: the project directory's checksum).
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
eph=${MOLECULE_EPHEMERAL_DIRECTORY:-$(python -c 'import pathlib, sys; from molecule.text import checksum
print(pathlib.Path.home() / ".ansible" / "tmp" / f"molecule.{checksum(pathlib.Path(sys.argv[1]).name, 4)}.default")' "$repo")}
[ -f "$eph/inventory/ansible_inventory.yml" ] || {
  echo "no molecule inventory in $eph: scripts/dev-site up first" >&2
  exit 1
}
export MOLECULE_EPHEMERAL_DIRECTORY="$eph" MOLECULE_INVENTORY_FILE="$eph/inventory/ansible_inventory.yml"
exec python "$repo/benchmarks/rerun/rerun.py" -i "$eph/inventory" "$@"
