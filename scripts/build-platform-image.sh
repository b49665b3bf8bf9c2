#!/usr/bin/env bash
# Build the molecule platform image (Debian 12, systemd as PID 1, python3) from the
# distro package mirror alone: debootstrap + `docker import`. No container registry.
#
# Environment:
#   PLATFORM_IMAGE      image name (default ml-workshop/platform)
#   PLATFORM_SUITE      Debian suite (default bookworm)
#   PLATFORM_MIRROR     mirror URL (default: first http(s) URI in the machine's apt sources)
#   EXTRA_CA_DIR        directory with extra CA *.crt files to trust inside the image
#                       (default /usr/local/share/ca-certificates)
#   FORCE_REBUILD=1     rebuild even when an image with the recipe hash exists
#
# The image is tagged <name>:<suite>-<recipe-hash> and <name>:<suite>; it is reused while
# this script, the suite, the mirror and the CA files are unchanged.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=${PLATFORM_IMAGE:-ml-workshop/platform}
suite=${PLATFORM_SUITE:-bookworm}
ca_dir=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
packages="systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,sudo,iproute2,procps,gnupg,curl,less,kmod,udev"

log() { printf '[platform-image] %s\n' "$*" >&2; }

mirror_from_sources() {
  # Debian's deb822 (.sources) and one-line (.list) formats, first http(s) debian mirror wins.
  local uri
  uri=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -hE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '{for (i=2;i<=NF;i++) if ($i ~ /^https?:/) {print $i; exit}}' \
          | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

mirror=${PLATFORM_MIRROR:-$(mirror_from_sources)}

ca_files=()
if [ -d "$ca_dir" ]; then
  while IFS= read -r -d '' f; do ca_files+=("$f"); done \
    < <(find "$ca_dir" -maxdepth 1 -name '*.crt' -type f -print0 | sort -z)
fi

hash=$( {
  cat "$0"
  echo "$suite $mirror $packages"
  for f in "${ca_files[@]}"; do sha256sum "$f"; done
} | sha256sum | cut -c1-12)
tag="$name:$suite-$hash"

if [ "${FORCE_REBUILD:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  log "reusing $tag"
  docker tag "$tag" "$name:$suite"
  echo "$tag"
  exit 0
fi

command -v debootstrap >/dev/null || {
  log "installing debootstrap from the distro"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2
}

work=$(mktemp -d /var/tmp/ml-workshop-platform.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
log "debootstrap $suite from $mirror (this takes a few minutes the first time)"
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# Trust the extra CA certificates (TLS-intercepting proxies) inside the image.
for f in "${ca_files[@]}"; do
  install -m 0644 "$f" "$root/usr/local/share/ca-certificates/$(basename "$f")"
done
chroot "$root" update-ca-certificates >/dev/null 2>&1 || true

# Same mirror inside; no recommends, no docs bloat.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
EOF
sec_mirror=${mirror%/debian*}/debian-security
echo "deb $sec_mirror $suite-security main" >>"$root/etc/apt/sources.list"
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  >"$root/etc/apt/apt.conf.d/90ml-workshop-norecommends"

# systemd in a container: no gettys, no udev triggers, no remount of /.
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
touch "$root/etc/machine-id"
for unit in getty.target systemd-udevd.service systemd-udev-trigger.service \
            systemd-remount-fs.service sys-kernel-debug.mount sys-kernel-tracing.mount \
            systemd-modules-load.service console-getty.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
chroot "$root" apt-get clean
rm -rf "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*

log "importing into docker as $tag"
tar -C "$root" -c . | docker import - "$tag-rootfs" >/dev/null
# STOPSIGNAL and LABEL are not `docker import --change` commands: add them in a local
# build FROM the imported image (nothing is pulled).
mkdir -p "$work/ctx"
cat >"$work/ctx/Dockerfile" <<EOF
FROM $tag-rootfs
ENV container=docker
LABEL org.ml-workshop.recipe=$hash
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
EOF
DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$work/ctx" >/dev/null 2>&1
docker rmi "$tag-rootfs" >/dev/null
docker tag "$tag" "$name:$suite"
echo "$tag"
