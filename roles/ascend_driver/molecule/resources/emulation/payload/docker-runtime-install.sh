#!/bin/sh
# EMULATION of the Ascend Docker Runtime package's install script (NOT Huawei software).
# Follows MindCluster component/ascend-docker-runtime/build/scripts/run_main.sh (and the older
# Ascend/ascend-docker-runtime build/scripts/run_main.sh), docs/ascend.md#ascend-docker-runtime:
#   --install | --upgrade | --uninstall, --install-path=P (files go to P/Ascend-Docker-Runtime,
#   default /usr/local/Ascend), --install-scene=docker|containerd|crio|isula (default docker; only
#   docker is emulated), --install-type=<product>, --version; --quiet/--nox11 are meaningless to it.
# - root only; every message also goes to /var/log/ascend-docker-runtime/installer.log;
# - --install and --upgrade ask for the EULA on stdin first: y/Y goes on, n/N stops with exit 0
#   ("install cancelled") and installs nothing, anything else asks again (at end of input the real
#   script asks forever; the emulation stops with exit 1 instead);
# - the package's arch must be the host's (check_platform); every existing ancestor of the install
#   path and of /etc/docker/daemon.json must be root:root, no symlink, not group/other-writable;
# - install: ascend-docker-runtime (here payload/ascend-docker-runtime: the real one's edits of the
#   container's OCI spec — NPU device nodes and driver mounts from ASCEND_VISIBLE_DEVICES — then
#   runc, so an engine really starts containers with it), -hook, -cli, -destroy, -plugin-install-helper, script/uninstall.sh;
#   /etc/ascend-docker-runtime.d/base.list (0440, the default mount list); with the docker scene
#   it merges into /etc/docker/daemon.json (created when missing, 0600) the runtime
#   `ascend` {path, runtimeArgs: []} and sets "default-runtime": "ascend" (ascend-docker-plugin-
#   install-helper, install/process/docker_process.go); then writes
#   <path>/Ascend-Docker-Runtime/ascend_docker_runtime_install.info (version=v<ver>, install-scene=...).
#   --install over an installed runtime overwrites it (the real script copies with cp -f).
# - upgrade: needs an installed runtime and /etc/ascend-docker-runtime.d; replaces the binaries and
#   the install info; daemon.json is not touched.
# - uninstall: removes the runtime and default-runtime from daemon.json, the config directory and
#   the install directory.
# Deviation: the binaries are 0755 here (vendor: 0550; root runs them either way).
cd "$(dirname "$0")" && . ./common.sh
RT=ascend-docker-runtime
LOG_DIR=/var/log/$RT
CONF_DIR=/etc/$RT.d
DOCKER_DIR=/etc/docker
mkdir -p "$LOG_DIR" && chmod 750 "$LOG_DIR"
rt_log() { # level message
  echo "$1 $2"
  echo "$1 [$(date +'%Y/%m/%d %H:%M:%S')] [uid: $(id -u)] [localhost] [$RT] $2" >>"$LOG_DIR/installer.log"
}
[ "$(id -u)" = 0 ] || { rt_log "[ERROR]" "failed, please run with root permission"; exit 1; }

mode=""; path=$ASCEND_PATH/Ascend-Docker-Runtime; path_given=""; scene=docker
for a in "$@"; do
  case "$a" in
    --install|--upgrade|--uninstall)
      [ -z "$mode" ] || { rt_log "[ERROR]" "failed, '$a' Repeat parameter!"; exit 1; }
      mode=${a#--} ;;
    --install-path=*) path_given=1; path=$(echo "${a#*=}/Ascend-Docker-Runtime" | sed 's|/*$||') ;;
    --install-scene=docker|--install-scene=containerd|--install-scene=crio|--install-scene=isula) scene=${a#*=} ;;
    --install-scene=*) rt_log "[ERROR]" "failed, please check the parameter of --install-scene=<scene>"; exit 1 ;;
    --install-type=A500|--install-type=A200|--install-type=A200ISoC|--install-type=A500A2|--install-type=A200IA2) ;;
    --install-type=*) rt_log "[ERROR]" "failed, please check the parameter of --install-type=<type>"; exit 1 ;;
    --version) echo "$RT version: $EMU_VERSION"; exit 0 ;;
    --quiet|--nox11) ;;
    *) rt_log "[ERROR]" "failed, unsupported parameters: $a"; exit 1 ;;
  esac
done
if [ -n "$path_given" ] && [ -z "$mode" ]; then
  rt_log "[ERROR]" "failed, only input <install_path> command. When use --install-path you also need input --install or --uninstall or --upgrade"
  exit 1
fi
[ -n "$mode" ] || { echo "Error input (emulation: give --install, --upgrade or --uninstall)"; exit 0; }
[ "$scene" = docker ] || { rt_log "[ERROR]" "emulation: only --install-scene=docker is emulated"; exit 1; }

check_path() { # every existing ancestor: root:root, no symlink, not group/other-writable
  echo "$1" | grep -Eq '^[a-zA-Z0-9./_-]{1,1024}$' \
    || { echo "[ERROR] parameter is invalid, char not all in 'a-zA-Z0-9./_-'"; return 1; }
  p=$(realpath -m -s "$1")
  while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  while [ "$p" != / ]; do
    [ ! -L "$p" ] || { echo "[ERROR] $p is soft link"; return 1; }
    [ "$(stat -c %u:%g "$p")" = 0:0 ] || { echo "[ERROR] user or group of $p is not root"; return 1; }
    case "$(stat -c %A "$p")" in ?????w*|????????w*) echo "[ERROR] group or other of $p has write permission"; return 1 ;; esac
    p=$(dirname "$p")
  done
}

check_eula() {
  echo "Do you accept the EULA to install Ascend-docker-runtime?[Y/N]"
  while :; do
    read -r yn || { rt_log "[ERROR]" "emulation: no answer to the EULA question (the real installer keeps asking)"; exit 1; }
    case "$yn" in
      [Yy]) rt_log "[INFO]" "user accepted EULA"; return 0 ;;
      [Nn]) rt_log "[INFO]" "install cancelled, user declined EULA"; exit 0 ;;
      *) echo "Do you accept the EULA to install Ascend-docker-runtime?[Y/N]" ;;
    esac
  done
}

check_platform() {
  [ "$EMU_ARCH" = "$(uname -m)" ] && { echo "[INFO] platform($EMU_ARCH) matched!"; return 0; }
  rt_log "[ERROR]" "$mode failed, run package and os not matched in arch"; exit 1
}

daemon_json() { # add|rm: the ascend-docker-plugin-install-helper's edit of daemon.json
  python3 - "$1" "$DOCKER_DIR/daemon.json" "$path/$RT" <<'PY'
import json, os, sys
action, dst, runtime = sys.argv[1:4]
if os.path.exists(dst):
    with open(dst) as f:
        daemon = json.load(f)
elif action == "rm":
    sys.exit(0)
else:
    daemon = {}
runtimes = daemon.setdefault("runtimes", {})
if action == "add":
    runtimes.setdefault("ascend", {})["path"] = runtime
    runtimes["ascend"].setdefault("runtimeArgs", [])
    daemon["default-runtime"] = "ascend"
else:
    runtimes.pop("ascend", None)
    if daemon.get("default-runtime") == "ascend":
        del daemon["default-runtime"]
tmp = "%s.%d" % (dst, os.getppid())
with open(tmp, "w") as f:
    json.dump(daemon, f, indent=8)
os.chmod(tmp, 0o600)
os.replace(tmp, dst)
PY
}

put_binaries() {
  mkdir -p "$path/script" && chmod 750 "$path" "$path/script"
  # the spec edits of the real runtime, then runc (payload/ascend-docker-runtime)
  cp ./ascend-docker-runtime "$path/$RT"
  for b in hook cli destroy plugin-install-helper; do
    printf '#!/bin/sh\n# EMULATION of ascend-docker-%s\nexit 0\n' "$b" >"$path/ascend-docker-$b"
  done
  printf '#!/bin/sh\n# EMULATION of the runtime uninstall script\nexit 0\n' >"$path/script/uninstall.sh"
  chmod 0755 "$path/$RT" "$path"/ascend-docker-*
  chmod 0500 "$path/script/uninstall.sh"
}

save_install_args() {
  printf 'version=v%s\narch=%s\nos=linux\npath=%s\nbuild=Ascend-docker-runtime_%s-%s\ninstall-scene=%s\n' \
    "$EMU_VERSION" "$EMU_ARCH" "$path" "$EMU_VERSION" "$EMU_ARCH" "$scene" >"$path/ascend_docker_runtime_install.info"
  chmod 640 "$path/ascend_docker_runtime_install.info"
}

case "$mode" in
  install)
    check_eula
    echo "[INFO] installing $RT"
    check_platform
    check_path "$path" || { rt_log "[ERROR]" "install failed, $path is invalid"; exit 1; }
    put_binaries
    check_path "$CONF_DIR/base.list" || { rt_log "[ERROR]" "install failed, $CONF_DIR/base.list is invalid"; exit 1; }
    mkdir -p "$CONF_DIR" && chmod 750 "$CONF_DIR"
    printf '%s\n' /usr/local/Ascend/driver/lib64 /usr/local/Ascend/driver/include /usr/local/dcmi \
      /usr/local/bin/npu-smi /var/queue_schedule >"$CONF_DIR/base.list"
    chmod 440 "$CONF_DIR/base.list"
    echo "[INFO] install executable files success"
    echo "[INFO] install scene is 'docker'."
    check_path "$DOCKER_DIR/daemon.json" || { rt_log "[ERROR]" "install failed, $DOCKER_DIR/daemon.json is invalid"; exit 1; }
    [ -d "$DOCKER_DIR" ] || mkdir -p -m 750 "$DOCKER_DIR"
    daemon_json add || { rt_log "[ERROR]" "install failed, ascend-docker-plugin-install-helper add returned non-zero"; exit 1; }
    rt_log "[INFO]" "$DOCKER_DIR/daemon.json modify success"
    save_install_args
    echo "[INFO] $RT has been installed in: $path"
    echo "[INFO] The version of $RT is: $EMU_VERSION"
    echo '[INFO] please reboot daemon and container engine to take effect'
    rt_log "[INFO]" "$RT install success"
    ;;
  upgrade)
    check_eula
    echo "[INFO] upgrading $RT"
    check_platform
    [ -d "$path" ] || { rt_log "[ERROR]" "upgrade failed, the specified install path does not exist, stopping upgrading"; exit 1; }
    [ -d "$CONF_DIR" ] || { rt_log "[ERROR]" "upgrade failed, the configuration directory does not exist"; exit 1; }
    check_path "$path" || { rt_log "[ERROR]" "upgrade failed, $path is invalid"; exit 1; }
    put_binaries
    save_install_args
    echo "[INFO] $RT has been installed in: $path"
    echo "[INFO] upgrade $RT success"
    echo "[INFO] The version of $RT is: v$EMU_VERSION"
    rt_log "[INFO]" "$RT upgrade success"
    ;;
  uninstall)
    echo "[INFO] uninstalling $RT $EMU_VERSION"
    [ -d "$path" ] || { rt_log "[WARNING]" "uninstall skipping, the specified install path does not exist"; exit 0; }
    daemon_json rm || { rt_log "[ERROR]" "uninstall failed, ascend-docker-plugin-install-helper rm returned non-zero"; exit 1; }
    rm -rf "$CONF_DIR" "$path"
    rt_log "[INFO]" "$RT uninstall success"
    ;;
esac
exit 0
