#!/bin/sh
# EMULATION of the Ascend NPU firmware package's install script (NOT Huawei software).
# docs/ascend.md#install-order: needs the driver (driver/tools/upgrade-tool present); --full on a fresh host,
# --upgrade otherwise; return codes 0 and 2 both mean success (ascend-deployer task_firmware.yml):
# this emulation returns 2 after an upgrade so the role's handling of 2 is exercised.
# The installed version is what upgrade-tool --system_version reports afterwards.
cd "$(dirname "$0")" && . ./common.sh
emu_parse_args "--full=install --run=install --upgrade=upgrade" \
  "--nox11 --install-for-all --install-username=* --install-usergroup=*" "$@"
[ -n "$mode" ] || emu_fail "[ERROR]ERR_NO:0x0004;ERR_DES:no install mode given (--full/--upgrade)"
emu_require_root
[ -x "$path/driver/tools/upgrade-tool" ] || emu_fail "[ERROR]ERR_NO:0x0095;ERR_DES:the driver is not installed, install the driver before the firmware"
mkdir -p "$path/firmware"
echo "Version=$EMU_VERSION" >"$path/firmware/version.info"
echo "Firmware package installed successfully! Reboot now or after driver installation for the installation/upgrade to take effect!"
[ "$mode" = upgrade ] && exit 2
exit 0
