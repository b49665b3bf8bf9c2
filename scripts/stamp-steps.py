#!/usr/bin/env python3
"""Copy stdin to stdout, prefixing molecule's step lines ("INFO     [default > converge] ...")
and the pytest/ansible summary lines with the seconds since this filter started, so a scenario's
log shows where its time went (used by scripts/test). Other lines pass unchanged."""

import re
import sys
import time

STEP = re.compile(r"^(INFO|WARNING|ERROR|CRITICAL)\s+\[|^Playbook run took |^=+ .* in [0-9.]+s")


def main() -> None:
    t0 = time.monotonic()
    for line in sys.stdin:
        if STEP.search(line):
            line = f"[+{time.monotonic() - t0:6.0f}s] {line}"
        sys.stdout.write(line)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
