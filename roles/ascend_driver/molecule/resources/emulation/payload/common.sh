# EMULATION helpers shared by the emulated Ascend install scripts (NOT Huawei software).
. "$(dirname "$0")/package.conf"
EMU_STATE=/etc/ascend-emulation/npus
ASCEND_PATH=/usr/local/Ascend

emu_log() { [ -n "${EMU_QUIET:-}" ] || echo "$*"; }
emu_fail() { echo "$*"; exit "${2:-1}"; }
emu_require_root() { [ "$(id -u)" = 0 ] || emu_fail "[ERROR]ERR_NO:0x0093;ERR_DES:permission denied, run as root"; }
