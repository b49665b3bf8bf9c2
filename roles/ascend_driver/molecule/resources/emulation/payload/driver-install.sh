#!/bin/sh
# EMULATION of the Ascend NPU driver package's install script (NOT Huawei software).
# CLI (docs/ascend.md#installer-options, driver help.info): --full | --run | --devel | --docker, --upgrade, --uninstall,
# --install-path=, --install-username=, --install-usergroup=, --install-for-all, --version,
# --quiet, --nox11 (the makeself header logs every call to /var/log/ascend-emulation/installers.log).
# Files written (docs/ascend.md#installed-versions): <path>/driver/version.info (Version=), /etc/ascend_install.info
# (UserName, UserGroup, Driver_Install_Type, Driver_Install_Path_Param, Driver_Install_For_All,
# Driver_Install_Mode), <path>/driver/tools/upgrade-tool, <path>/driver/lib64, /usr/local/dcmi,
# /usr/local/bin/npu-smi (docs/ascend.md#npu-smi: npu-smi moved from /usr/local/sbin to /usr/local/bin).
# Device nodes (docs/ascend.md#device-nodes): /dev/davinciN, davinci_manager, devmm_svm, hisi_hdc owned
# HwHiAiUser:HwHiAiUser 0660, 0666 with --install-for-all; made with mknod from the emulated
# hardware state /etc/ascend-emulation/npus (on a real host the loaded kernel module makes them).
cd "$(dirname "$0")" && . ./common.sh
mode=""; type=""; user=HwHiAiUser; group=HwHiAiUser; forall=no; path=$ASCEND_PATH
for a in "$@"; do
  case "$a" in
    --full|--run|--devel|--docker) mode=install; type=${a#--} ;;
    --upgrade) mode=upgrade ;;
    --uninstall) mode=uninstall ;;
    --version) echo "$EMU_VERSION"; exit 0 ;;
    --install-username=*) user=${a#*=} ;;
    --install-usergroup=*) group=${a#*=} ;;
    --install-for-all) forall=yes ;;
    --install-path=*) path=${a#*=} ;;
    --quiet) EMU_QUIET=1 ;;
    --nox11) ;;
    *) emu_fail "[ERROR]ERR_NO:0x0004;ERR_DES:Unrecognized parameter: $a" ;;
  esac
done
[ -n "$mode" ] || emu_fail "[ERROR]ERR_NO:0x0004;ERR_DES:no install mode given (--full/--run/--upgrade/--uninstall)"
emu_require_root
# The installer aborts with ERR_NO:0x0091 when the run user is missing (docs/ascend.md#run-user).
id "$user" >/dev/null 2>&1 || emu_fail "[ERROR]ERR_NO:0x0091;ERR_DES:user $user does not exist, create it first"
getent group "$group" >/dev/null 2>&1 || emu_fail "[ERROR]ERR_NO:0x0091;ERR_DES:group $group does not exist, create it first"
drv=$path/driver
case "$mode" in
  install)
    [ ! -f "$drv/version.info" ] || emu_fail "[ERROR]ERR_NO:0x0080;ERR_DES:driver $(cat "$drv/version.info") is already installed, use --upgrade"
    ;;
  upgrade)
    [ -f "$drv/version.info" ] || emu_fail "[ERROR]ERR_NO:0x0080;ERR_DES:no driver installed, use --full"
    type=$(sed -n 's/^Driver_Install_Type=//p' /etc/ascend_install.info 2>/dev/null); type=${type:-full}
    old_forall=$(sed -n 's/^Driver_Install_For_All=//p' /etc/ascend_install.info 2>/dev/null)
    [ "$forall" = yes ] || forall=${old_forall:-no}
    ;;
  uninstall)
    rm -rf "$drv" /usr/local/dcmi /usr/local/bin/npu-smi /etc/ascend_install.info
    rm -f /dev/davinci[0-9]* /dev/davinci_manager /dev/devmm_svm /dev/hisi_hdc
    echo "Driver package uninstalled successfully!"; exit 0 ;;
esac
mkdir -p "$drv/tools" "$drv/lib64/driver" "$drv/lib64/common" /usr/local/dcmi /usr/local/bin
echo "Version=$EMU_VERSION" >"$drv/version.info"
echo "EMULATION libascend_hal.so $EMU_VERSION" >"$drv/lib64/driver/libascend_hal.so"
echo "EMULATION libdcmi.so $EMU_VERSION" >/usr/local/dcmi/libdcmi.so
echo "/* EMULATION dcmi_interface_api.h */" >/usr/local/dcmi/dcmi_interface_api.h
# The card table as the emulated DCMI sees it (npu-smi in containers, which get /usr/local/dcmi).
if [ -f "$EMU_STATE" ]; then cp "$EMU_STATE" /usr/local/dcmi/.emulation-npus; fi
install -m 0755 upgrade-tool "$drv/tools/upgrade-tool"
install -m 0755 npu-smi /usr/local/bin/npu-smi
cat >/etc/ascend_install.info <<INFO
UserName=$user
UserGroup=$group
Driver_Install_Type=$type
Driver_Install_Path_Param=$path
Driver_Install_For_All=$forall
Driver_Install_Mode=normal
INFO
mode_bits=0660; [ "$forall" = yes ] && mode_bits=0666
mk() { # name major minor
  rm -f "/dev/$1"; mknod -m "$mode_bits" "/dev/$1" c "$2" "$3" && chown "$user:$group" "/dev/$1"
}
mk davinci_manager 235 0; mk devmm_svm 234 0; mk hisi_hdc 233 0
if [ -f "$EMU_STATE" ]; then
  while read -r id name health; do
    case "$id" in ''|\#*) continue ;; esac
    mk "davinci$id" 236 "$id"
  done <"$EMU_STATE"
fi
echo "Driver package installed successfully! Reboot needed for installation/upgrade to take effect!"
exit 0
