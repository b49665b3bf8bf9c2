#!/bin/sh
# EMULATION of the CANN toolkit package's install script (NOT Huawei software).
# CLI (docs/ascend.md#installer-options): --install, --upgrade, --install-path=, --install-for-all, --quiet, --nox11,
# --version, --uninstall. Writes <path>/ascend-toolkit/<ver>/<arch>-linux/ascend_toolkit_install.info
# (ascend-deployer detects an installed toolkit by ascend-toolkit/*/*/ascend_toolkit_install.info),
# the `latest` link and <path>/ascend-toolkit/set_env.sh. --install over an installed toolkit
# fails (ascend-deployer uses --upgrade then).
cd "$(dirname "$0")" && . ./common.sh
emu_parse_args "--install=install --full=install --upgrade=upgrade --uninstall=uninstall" \
  "--nox11 --install-for-all --install-username=* --install-usergroup=*" "$@"
[ -n "$mode" ] || emu_fail "[ERROR] no mode given (--install/--upgrade/--uninstall)"
emu_require_root
tk=$path/ascend-toolkit
installed=$(ls "$tk"/*/*/ascend_toolkit_install.info 2>/dev/null | head -n1)
case "$mode" in
  install) [ -z "$installed" ] || emu_fail "[ERROR] a toolkit is already installed ($installed), use --upgrade" ;;
  upgrade) [ -n "$installed" ] || emu_fail "[ERROR] no toolkit installed, use --install"
           for d in "$tk"/*/; do [ -L "${d%/}" ] || rm -rf "$d"; done ;;
  uninstall) rm -rf "$tk"; echo "uninstalled"; exit 0 ;;
esac
dir=$tk/$EMU_VERSION/$EMU_ARCH-linux
mkdir -p "$dir" "$tk/$EMU_VERSION/bin"
printf 'package_name=Ascend-cann-toolkit\nversion=%s\ninnerversion=V100R001C%s\narch=%s\nos=linux\npath=%s\n' \
  "$EMU_VERSION" "$EMU_VERSION" "$EMU_ARCH" "$tk/$EMU_VERSION/$EMU_ARCH-linux" >"$dir/ascend_toolkit_install.info"
ln -sfn "$EMU_VERSION" "$tk/latest"
cat >"$tk/set_env.sh" <<ENV
# EMULATION of ascend-toolkit/set_env.sh
export ASCEND_TOOLKIT_HOME=$tk/latest
export ASCEND_HOME_PATH=$tk/latest
export LD_LIBRARY_PATH=$tk/latest/lib64:$path/driver/lib64/driver:\${LD_LIBRARY_PATH:-}
export PATH=$tk/latest/bin:\$PATH
ENV
echo "Ascend-cann-toolkit install success (emulation), version $EMU_VERSION"
exit 0
