#!/bin/sh
# Run a hub benchmark inside a converged hub molecule instance (nested Docker, emulated NPUs).
#   MOLECULE_DESTROY=never ROLE=hub SKIP_LINT=1 scripts/test     # leaves the instance
#   benchmarks/hub/run-in-molecule.sh [instance] [N] [script] [script options...]
# script: spawn_burst.py (the default: N users start at once) or phases.py (the phases of one
# start, N=1, or of a burst of N); options go to the script, e.g.
#   benchmarks/hub/run-in-molecule.sh mlw-hub-default-instance 1 phases.py --repeat 5 --json /root/phases.json
#   docker cp mlw-hub-default-instance:/root/phases.json .
# The NPU policy is switched to `shared` for the run with a jupyterhub_config.d file (the
# operators' escape hatch; exclusive would refuse all but two of the users), then removed, also
# when the script fails.
set -eu
inst=${1:-mlw-hub-default-instance}
n=${2:-20}
script=${3:-spawn_burst.py}
if [ $# -ge 3 ]; then shift 3; else shift $#; fi
here=$(cd "$(dirname "$0")" && pwd)
case "$script" in
  spawn_burst.py|phases.py) ;;
  *) echo "script: spawn_burst.py or phases.py, not $script" >&2; exit 2 ;;
esac
docker cp "$here/$script" "$inst:/root/$script"
restore() {
  docker exec "$inst" sh -c 'rm -f /etc/jupyterhub/jupyterhub_config.d/90-bench.py; systemctl restart jupyterhub'
}
trap restore EXIT
docker exec "$inst" sh -c 'echo "c.WorkshopSpawner.npu_policy = \"shared\"" > /etc/jupyterhub/jupyterhub_config.d/90-bench.py
  systemctl restart jupyterhub
  for i in $(seq 60); do curl -sf http://127.0.0.1:28000/hub/api/ >/dev/null && break; sleep 1; done'
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; hub in $inst (systemd in Docker, nested dockerd)"
docker exec "$inst" python3 "/root/$script" -n "$n" "$@"
