#!/bin/sh
# EMULATION of the Ascend Docker Runtime package's install script (NOT Huawei software).
# CLI (docs/ascend.md#ascend-docker-runtime, mind-cluster): --install [--install-path=] [--install-scene=docker],
# --uninstall, --version; recent versions ask for the EULA on stdin and stop unless answered y.
# Installs <path>/Ascend-Docker-Runtime/ascend-docker-runtime (here a wrapper that runs runc,
# so the engine can really start containers with it) plus hook/cli placeholders.
cd "$(dirname "$0")" && . ./common.sh
mode=""; path=$ASCEND_PATH
for a in "$@"; do
  case "$a" in
    --install) mode=install ;;
    --uninstall) mode=uninstall ;;
    --version) echo "$EMU_VERSION"; exit 0 ;;
    --install-path=*) path=${a#*=} ;;
    --install-scene=docker) ;;
    --install-scene=*) emu_fail "[ERROR] only --install-scene=docker is emulated" ;;
    --quiet|--nox11) ;;
    *) emu_fail "[ERROR] Unrecognized parameter: $a" ;;
  esac
done
[ -n "$mode" ] || emu_fail "[ERROR] no mode given (--install/--uninstall)"
emu_require_root
d=$path/Ascend-Docker-Runtime
[ "$mode" = uninstall ] && { rm -rf "$d"; echo "uninstalled"; exit 0; }
printf 'Do you accept the EULA to install Ascend Docker Runtime? [Y/N]: '
read -r answer || answer=""
case "$answer" in y|Y|yes|Yes) ;; *) echo; emu_fail "[ERROR] EULA not accepted, installation stopped" ;; esac
mkdir -p "$d"
printf '#!/bin/sh\n# EMULATION of ascend-docker-runtime: hands over to runc.\nexec runc "$@"\n' >"$d/ascend-docker-runtime"
printf '#!/bin/sh\n# EMULATION of ascend-docker-hook\nexit 0\n' >"$d/ascend-docker-hook"
printf '#!/bin/sh\n# EMULATION of ascend-docker-cli\nexit 0\n' >"$d/ascend-docker-cli"
chmod 0755 "$d"/ascend-docker-*
echo "$EMU_VERSION" >"$d/VERSION"
echo
echo "[INFO] Ascend Docker Runtime $EMU_VERSION installed successfully (emulation)"
exit 0
