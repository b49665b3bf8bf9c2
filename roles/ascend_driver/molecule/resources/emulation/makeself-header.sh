#!/bin/sh
# EMULATION of a makeself self-extracting archive (an Ascend .run package) for ml-workshop
# tests. NOT Huawei software. Built by build-packages.sh; the payload (a gzip'd tar) follows
# the line __PAYLOAD__.
# Emulated makeself options (docs/ascend.md#installer-options):
#   --check   verify the payload checksum, print the result, exit (nothing installed)
#   --quiet / --nox11   accepted; everything else goes to the package's install script.
EMU_PACKAGE="@PACKAGE@"
EMU_SHA256="@SHA256@"
EMU_LOG_DIR=/var/log/ascend-emulation
mkdir -p "$EMU_LOG_DIR" 2>/dev/null
echo "$(basename "$0") $*" >>"$EMU_LOG_DIR/installers.log" 2>/dev/null
line=$(awk '/^__PAYLOAD__$/ { print NR + 1; exit }' "$0")
for a in "$@"; do
  if [ "$a" = "--check" ]; then
    printf 'Verifying archive integrity...'
    sum=$(tail -n +"$line" "$0" | sha256sum | cut -d' ' -f1)
    if [ "$sum" = "$EMU_SHA256" ]; then
      echo "  100%   SHA256 checksums are OK. All good."
      exit 0
    fi
    echo " Error in SHA256 checksums: $sum is different from $EMU_SHA256"
    exit 1
  fi
done
tmp=$(mktemp -d /tmp/ascend-emulation.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
tail -n +"$line" "$0" | tar xzf - -C "$tmp" || { echo "payload extraction failed"; exit 1; }
EMU_PACKAGE="$EMU_PACKAGE" sh "$tmp/install.sh" "$@"
exit $?
__PAYLOAD__
