#!/usr/bin/env bash
# Prepare a control node / test machine from nothing (Debian or Ubuntu, as root):
#   1. a virtualenv with the pinned toolchain (requirements.txt) and the ml-workshop package of
#      this repository installed editable (pip install -e .: the filter plugins import it),
#   2. a Docker engine that answers (`--with-docker`): the distro's docker.io, and dockerd
#      started by hand when there is no systemd to start it.
# Safe to run again: it only does what is missing, and says what it did.
#
# Offline (README "Offline site"): `--bundle=DIR` takes the toolchain's wheels and the packages
# (python3-venv, rsync) from an offline bundle made by bundle.yml, and never asks an index.
#
# Environment: MLW_VENV (default ./.venv), MLW_PYTHON (default python3).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
venv=${MLW_VENV:-$repo/.venv}
python=${MLW_PYTHON:-python3}
with_docker=0
with_browser=0
bundle=""
for arg in "$@"; do
  case "$arg" in
    --with-docker) with_docker=1 ;;
    --with-browser) with_browser=1 ;;
    --bundle=*) bundle=${arg#--bundle=} ;;
    *) echo "usage: $0 [--with-docker] [--with-browser] [--bundle=DIR]" >&2; exit 2 ;;
  esac
done

say() { printf '[bootstrap] %s\n' "$*" >&2; }

apt_opts=()
if [ -n "$bundle" ]; then
  if [ ! -f "$bundle/manifest.json" ] || [ ! -f "$bundle/wheels.tar" ]; then
    echo "bootstrap: --bundle=$bundle: no manifest.json and wheels.tar there (make the bundle with bundle.yml)" >&2
    exit 2
  fi
  bundle_tmp=$(mktemp -d)
  trap 'rm -rf "$bundle_tmp"' EXIT
  tar -xf "$bundle/wheels.tar" -C "$bundle_tmp"
  export PIP_NO_INDEX=1 PIP_FIND_LINKS="$bundle_tmp/wheels"
  say "offline: wheels from $bundle/wheels.tar, no index"
  # shellcheck disable=SC1091
  . /etc/os-release
  apt_key="${ID}-${VERSION_CODENAME:-}-$(dpkg --print-architecture 2>/dev/null || echo unknown)"
  if [ -f "$bundle/apt/$apt_key.tar" ]; then
    tar -xf "$bundle/apt/$apt_key.tar" -C "$bundle_tmp"
    echo "deb [trusted=yes] file:$bundle_tmp/$apt_key ./" >"$bundle_tmp/sources.list"
    mkdir -p "$bundle_tmp/sources.list.d"
    apt_opts=(-o "Dir::Etc::SourceList=$bundle_tmp/sources.list" -o "Dir::Etc::SourceParts=$bundle_tmp/sources.list.d")
  fi
fi

apt_updated=0
apt_install() {
  if [ -n "$bundle" ] && [ ${#apt_opts[@]} -eq 0 ]; then
    echo "bootstrap: $* missing here, and the bundle has no apt repository for $apt_key" >&2
    exit 2
  fi
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    apt-get "${apt_opts[@]}" update -q >/dev/null
    apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "$@" >/dev/null
}

# --- virtualenv ---------------------------------------------------------------------------
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  apt_install python3-venv python3-pip
fi
req_hash=$(sha256sum "$repo/requirements.txt" | cut -c1-16)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.mlw-requirements" 2>/dev/null)" != "$req_hash" ]; then
  say "creating virtualenv $venv with the pinned toolchain"
  "$python" -m venv "$venv"
  [ -n "$bundle" ] || "$venv/bin/pip" install -q --upgrade pip >/dev/null 2>&1 || true
  "$venv/bin/pip" install -q -r "$repo/requirements.txt" 2> >(grep -v '^WARNING: Location' >&2)
  echo "$req_hash" >"$venv/.mlw-requirements"
else
  say "virtualenv $venv is current"
fi

# --- rsync: the hub role syncs the workshop content with ansible.posix.synchronize ---------
command -v rsync >/dev/null 2>&1 || apt_install rsync

# --- the ml-workshop package (src/ml_workshop), editable ----------------------------------
# The roles' filter plugins import it from the Python that runs Ansible. Reinstalled when it is
# missing, installed from another checkout, or pyproject.toml changed.
pkg_hash=$( (sha256sum "$repo/pyproject.toml"; echo "$repo") | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.mlw-package" 2>/dev/null)" != "$pkg_hash" ] \
  || ! (cd / && "$venv/bin/python" -c 'import os, sys, ml_workshop
sys.exit(os.path.realpath(ml_workshop.__file__) != os.path.realpath(sys.argv[1]))' \
    "$repo/src/ml_workshop/__init__.py") 2>/dev/null; then
  say "installing the ml-workshop package (editable, from $repo) into $venv"
  "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$repo"
  echo "$pkg_hash" >"$venv/.mlw-package"
else
  say "the ml-workshop package in $venv is current (editable, $repo)"
fi

# --- Docker engine ------------------------------------------------------------------------
if [ "$with_docker" = 1 ]; then
  if docker info >/dev/null 2>&1; then
    say "Docker engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
  else
    if ! command -v dockerd >/dev/null 2>&1; then
      say "no Docker engine here: installing the distro's docker.io"
      apt_install docker.io
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then apt_install debootstrap; fi
    if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
      say "started docker.service with systemd"
    else
      say "no systemd here: starting dockerd in the background (log: /var/log/mlw-dockerd.log)"
      nohup dockerd >/var/log/mlw-dockerd.log 2>&1 &
    fi
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
    docker info >/dev/null 2>&1 || { say "dockerd did not answer; see /var/log/mlw-dockerd.log"; exit 1; }
    say "Docker engine answers: $(docker version --format '{{.Server.Version}}')"
  fi
  command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap
fi

# --- Browser for end-to-end tests (Debian's chromium; Playwright drives it, downloads nothing) ---
# certutil (libnss3-tools) puts a test site's workshop CA into the browser's own NSS database.
if [ "$with_browser" = 1 ] && { [ ! -x /usr/bin/chromium ] || ! command -v certutil >/dev/null; }; then
  say "installing the distro's chromium and certutil for the browser tests"
  apt_install chromium libnss3-tools
fi
