#!/usr/bin/env bash
# The "prepared" molecule platform: the platform image (scripts/build-platform-image.sh) plus what
# every instance that runs containers installs identically — the distro's Docker engine (enabled
# under systemd, started at boot) and the test clients the scenarios use. Built FROM the platform
# image on the outer engine (nothing is pulled), reused by its recipe hash.
#
# Usage: build-platform-docker-image.sh BASE_TAG   (prints the tag of the prepared image)
#
# Scenarios that test installing Docker itself (roles/docker) keep the bare platform image, so
# the docker role's install path stays tested from a bare Debian host.
set -euo pipefail
base=${1:?usage: $0 BASE_TAG}
name=${PLATFORM_DOCKER_IMAGE:-ml-workshop/platform-docker}
packages="docker.io sqlite3 openssh-client sshpass rsync"

log() { printf '[platform-docker-image] %s\n' "$*" >&2; }

base_id=$(docker image inspect --format '{{.Id}}' "$base")
hash=$( { cat "$0"; echo "$base_id $packages"; } | sha256sum | cut -c1-12)
tag="$name:bookworm-$hash"
if [ "${FORCE_REBUILD:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  log "reusing $tag"
  echo "$tag"
  exit 0
fi
work=$(mktemp -d /var/tmp/ml-workshop-platform-docker.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat >"$work/Dockerfile" <<DOCKERFILE
FROM $base
RUN apt-get update -q \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $packages \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \\
 && systemctl enable docker.service containerd.service
LABEL org.ml-workshop.recipe=$hash
DOCKERFILE
log "building $tag from $base (docker.io and test clients from the distro mirror)"
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$work" >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
echo "$tag"
