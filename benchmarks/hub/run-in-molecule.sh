#!/bin/sh
# Run spawn_burst.py inside a converged hub molecule instance (nested Docker, emulated NPUs).
#   MOLECULE_DESTROY=never ROLE=hub SKIP_LINT=1 scripts/test     # leaves the instance
#   benchmarks/hub/run-in-molecule.sh [instance] [N]
# The NPU policy is switched to `shared` for the burst with a jupyterhub_config.d file (the
# operators' escape hatch; exclusive would refuse all but two of the users), then removed.
set -eu
inst=${1:-mlw-hub-default-instance}
n=${2:-20}
here=$(cd "$(dirname "$0")" && pwd)
docker cp "$here/spawn_burst.py" "$inst:/root/spawn_burst.py"
docker exec "$inst" sh -c 'echo "c.WorkshopSpawner.npu_policy = \"shared\"" > /etc/jupyterhub/jupyterhub_config.d/90-bench.py
  systemctl restart jupyterhub
  for i in $(seq 60); do curl -sf http://127.0.0.1:28000/hub/api/ >/dev/null && break; sleep 1; done'
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; hub in $inst (systemd in Docker, nested dockerd)"
docker exec "$inst" python3 /root/spawn_burst.py -n "$n"
docker exec "$inst" sh -c 'rm -f /etc/jupyterhub/jupyterhub_config.d/90-bench.py; systemctl restart jupyterhub'
