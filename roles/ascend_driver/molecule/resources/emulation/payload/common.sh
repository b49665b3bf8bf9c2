# EMULATION helpers shared by the emulated Ascend install scripts (NOT Huawei software).
. "$(dirname "$0")/package.conf"
EMU_STATE=/etc/ascend-emulation/npus
ASCEND_PATH=/usr/local/Ascend

emu_log() { [ -n "${EMU_QUIET:-}" ] || echo "$*"; }
emu_fail() { echo "$*"; exit "${2:-1}"; }
emu_require_root() { [ "$(id -u)" = 0 ] || emu_fail "[ERROR]ERR_NO:0x0093;ERR_DES:permission denied, run as root"; }

# emu_parse_args "FLAG=MODE ..." "IGNORED_PATTERN ..." ARGS...
# The CLI the firmware, toolkit and kernels packages share (docs/ascend.md#installer-options): each package's mode
# flags and its silently accepted flags are given by the caller; --version, --install-path= and
# --quiet behave alike; anything else is refused as the vendor scripts do. Sets $mode and $path.
emu_parse_args() {
  _modes=$1; _ignored=$2; shift 2
  mode=""; path=$ASCEND_PATH
  set -f
  for a in "$@"; do
    _hit=""
    for _spec in $_modes; do
      [ "$a" = "${_spec%%=*}" ] && { mode=${_spec#*=}; _hit=1; }
    done
    for _pat in $_ignored; do
      case "$a" in $_pat) _hit=1 ;; esac
    done
    [ -n "$_hit" ] && continue
    case "$a" in
      --version) echo "$EMU_VERSION"; exit 0 ;;
      --install-path=*) path=${a#*=} ;;
      --quiet) EMU_QUIET=1 ;;
      *) emu_fail "[ERROR]ERR_NO:0x0004;ERR_DES:Unrecognized parameter: $a" ;;
    esac
  done
  set +f
}
