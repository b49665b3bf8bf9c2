#!/bin/sh
# EMULATION of the CANN kernels / ops / nnal packages' install script (NOT Huawei software).
# CLI (docs/ascend.md#installer-options): --install, --upgrade, --install-path=, --install-for-all, --type=nnae|toolkit,
# --quiet, --nox11, --version. Needs the toolkit of the same version. Writes
# <path>/ascend-toolkit/<ver>/opp_kernel/version.info (Version=) for kernels/ops (the real
# opp_kernel scripts keep version.info and ascend_install.info under opp_kernel/) and
# <path>/nnal/version.info for nnal.
cd "$(dirname "$0")" && . ./common.sh
emu_parse_args "--install=install --full=install --upgrade=upgrade" \
  "--type=nnae --type=toolkit --nox11 --install-for-all" "$@"
[ -n "$mode" ] || emu_fail "[ERROR] no mode given (--install/--upgrade)"
emu_require_root
[ -d "$path/ascend-toolkit/$EMU_VERSION" ] || emu_fail "[ERROR] CANN toolkit $EMU_VERSION is not installed under $path/ascend-toolkit; install it first"
if [ "$EMU_COMPONENT" = nnal ]; then d=$path/nnal; else d=$path/ascend-toolkit/$EMU_VERSION/opp_kernel; fi
mkdir -p "$d"
echo "Version=$EMU_VERSION" >"$d/version.info"
printf 'USERNAME=root\nUSERGROUP=root\nOPP_KERNEL_INSTALL_TYPE=full\n' >"$d/ascend_install.info"
echo "$EMU_PACKAGE install success (emulation)"
exit 0
