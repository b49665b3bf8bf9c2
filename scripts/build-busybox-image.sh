#!/usr/bin/env bash
# Build a tiny image (ml-workshop/busybox:latest) from Debian's busybox-static package,
# for tests that need "some container" inside a molecule instance. No registry involved.
set -euo pipefail
tag=${BUSYBOX_IMAGE:-ml-workshop/busybox:latest}
if docker image inspect "$tag" >/dev/null 2>&1 && [ "${FORCE_REBUILD:-0}" != 1 ]; then
  echo "$tag"; exit 0
fi
work=$(mktemp -d /var/tmp/ml-workshop-busybox.XXXXXX)
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download busybox-static >/dev/null 2>&1 ) || {
  apt-get update -q >/dev/null && ( cd "$work" && apt-get download busybox-static >/dev/null )
}
dpkg-deb -x "$work"/busybox-static_*.deb "$work/root"
mkdir -p "$work/root"/{tmp,etc,usr/bin,sbin,usr/sbin,root}
for applet in $("$work/root/bin/busybox" --list); do
  [ -e "$work/root/bin/$applet" ] || ln -s busybox "$work/root/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/root/etc/passwd"
echo 'root:x:0:' >"$work/root/etc/group"
tar -C "$work/root" -c . | docker import -c 'CMD ["/bin/sh"]' - "$tag" >/dev/null
echo "$tag"
