#!/bin/bash
# Spawn latency in cluster mode next to per-server mode: same machine, same run, same site
# (scripts/dev-site: the cache host, npu1 with 8 EMULATED NPUs, npu2 with 4).
#   scripts/dev-site up                          # once
#   benchmarks/hub/cluster-vs-per-server.sh [N]  # N simultaneous starts in each mode (default 6)
# 1. cluster mode (site.yml -e workshop_hub_mode=cluster): the one hub on the cache host starts N
#    servers as Swarm services on npu1/npu2 (exclusive, 1 NPU each) — spawn_burst.py on the cache host;
# 2. per-server mode (site.yml as configured): npu1's own hub starts N containers — spawn_burst.py on npu1.
# Prints both results (spawn_burst.py's p50/p95/max request -> ready and the hub API latency) and
# leaves the site in per-server mode. Each mode's servers are stopped after its burst.
set -euo pipefail
n=${1:-6}
repo=$(cd "$(dirname "$0")/../.." && pwd)
prefix=${MLW_INSTANCE_PREFIX:-mlw-site-default}
here=$repo/benchmarks/hub
eph=$("$repo/.venv/bin/python" -c 'import pathlib, sys; from molecule.text import checksum
print(pathlib.Path.home() / ".ansible" / "tmp" / f"molecule.{checksum(pathlib.Path(sys.argv[1]).name, 4)}.default")' "$repo")
[ -d "$eph/inventory" ] || { echo "no dev site (scripts/dev-site up first)" >&2; exit 1; }
export MOLECULE_EPHEMERAL_DIRECTORY=$eph MOLECULE_INVENTORY_FILE=$eph/inventory/ansible_inventory.yml
site() {
  echo "== site.yml $*"
  "$repo/scripts/dev-site" run ansible-playbook -i "$eph/inventory" "$repo/molecule/default/converge.yml" "$@" \
    >"/tmp/mlw-bench-site-$$.log" 2>&1 || { tail -30 "/tmp/mlw-bench-site-$$.log"; exit 1; }
}
burst() { # instance label
  docker cp "$here/spawn_burst.py" "$1:/root/spawn_burst.py"
  echo "== $2: $n simultaneous starts on $1"
  docker exec "$1" python3 /root/spawn_burst.py -n "$n" --prefix "bench${2:0:1}"
}
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; instances of $prefix (systemd in Docker, nested dockerd)"
for node in npu1 npu2; do  # nothing of earlier runs holds an NPU
  docker exec "$prefix-$node" sh -c 'docker ps -q --filter label=ml-workshop.user | xargs -r docker rm -f >/dev/null'
done
site -e workshop_hub_mode=cluster -e '{"hub_roster": []}'
burst "$prefix-cache" cluster
site
burst "$prefix-npu1" per-server
