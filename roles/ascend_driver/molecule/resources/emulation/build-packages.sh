#!/bin/sh
# EMULATION: build emulated Ascend .run packages for ml-workshop tests (NOT Huawei software).
#   build-packages.sh OUTDIR [ARCH] COMPONENT:VERSION[:CHIP] ...
# COMPONENT: driver firmware toolkit kernels ops nnal docker-runtime; CHIP defaults to 910b;
# ARCH defaults to `uname -m`. File names follow docs/ascend.md#packages (driver arch x86-64, firmware no arch,
# kernels `_linux.run` up to 8.2, `-ops` from 8.5).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1; shift
arch=$(uname -m)
case "${1:-}" in aarch64|x86_64) arch=$1; shift ;; esac
darch=$arch; [ "$arch" = x86_64 ] && darch=x86-64
mkdir -p "$out"
for spec in "$@"; do
  comp=${spec%%:*}; rest=${spec#*:}; ver=${rest%%:*}; chip=910b
  case "$rest" in *:*) chip=${rest#*:} ;; esac
  case "$comp" in
    driver) name="Ascend-hdk-$chip-npu-driver_${ver}_linux-$darch.run"; script=driver-install.sh ;;
    firmware) name="Ascend-hdk-$chip-npu-firmware_$ver.run"; script=firmware-install.sh ;;
    toolkit) name="Ascend-cann-toolkit_${ver}_linux-$arch.run"; script=toolkit-install.sh ;;
    kernels) name="Ascend-cann-kernels-${chip}_${ver}_linux.run"; script=kernels-install.sh ;;
    ops) name="Ascend-cann-$chip-ops_${ver}_linux-$arch.run"; script=kernels-install.sh ;;
    nnal) name="Ascend-cann-nnal_${ver}_linux-$arch.run"; script=kernels-install.sh ;;
    docker-runtime) name="Ascend-docker-runtime_${ver}_linux-$arch.run"; script=docker-runtime-install.sh ;;
    *) echo "unknown component $comp" >&2; exit 2 ;;
  esac
  work=$(mktemp -d)
  cp "$here/payload/$script" "$work/install.sh"
  cp "$here/payload/common.sh" "$here/payload/npu-smi" "$here/payload/upgrade-tool" "$work/"
  [ "$comp" != docker-runtime ] || cp "$here/payload/ascend-docker-runtime" "$work/"
  printf 'EMU_VERSION=%s\nEMU_COMPONENT=%s\nEMU_CHIP=%s\nEMU_ARCH=%s\n' "$ver" "$comp" "$chip" "$arch" >"$work/package.conf"
  tar czf "$work.tgz" -C "$work" .
  sum=$(sha256sum "$work.tgz" | cut -d' ' -f1)
  sed -e "s|@PACKAGE@|$name|" -e "s|@SHA256@|$sum|" "$here/makeself-header.sh" >"$out/$name"
  cat "$work.tgz" >>"$out/$name"
  chmod 0755 "$out/$name"
  rm -rf "$work" "$work.tgz"
  echo "$out/$name"
done
