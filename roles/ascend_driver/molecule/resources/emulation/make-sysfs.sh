#!/bin/sh
# EMULATION: a sysfs tree with N Ascend NPUs for ml-workshop tests.
#   make-sysfs.sh ROOT DEVICE N   e.g. make-sysfs.sh /opt/ascend-emulation/sysfs 0xd802 8
# Writes ROOT/bus/pci/devices/<addr>/{vendor,device,subsystem_device} like the kernel does
# (vendor 0x19e5, device ids docs/ascend.md#hardware-detection: 0xd802 = 910B), plus one non-NPU device.
# N = 0 gives a host without NPUs.
set -eu
root=$1; dev=$2; n=$3
rm -rf "$root/bus/pci/devices"
mkdir -p "$root/bus/pci/devices"
d="$root/bus/pci/devices/0000:00:00.0"; mkdir -p "$d"
echo 0x8086 >"$d/vendor"; echo 0x1237 >"$d/device"; echo 0x1100 >"$d/subsystem_device"
d="$root/bus/pci/devices/0000:02:00.0"; mkdir -p "$d"   # a Huawei NIC: same vendor, not an NPU
echo 0x19e5 >"$d/vendor"; echo 0x1822 >"$d/device"; echo 0x0000 >"$d/subsystem_device"
i=0
for bus in c1 c2 81 82 01 02 41 42 61 62 a1 a2 e1 e2 21 22; do
  [ "$i" -lt "$n" ] || break
  d="$root/bus/pci/devices/0000:$bus:00.0"; mkdir -p "$d"
  echo 0x19e5 >"$d/vendor"; echo "$dev" >"$d/device"; echo 0x3000 >"$d/subsystem_device"
  i=$((i + 1))
done
