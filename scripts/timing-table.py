#!/usr/bin/env python3
"""Turn scripts/test's summary (PASS/FAIL <part> <seconds>s lines) into the README's timing table.

    python scripts/timing-table.py .test-logs/all/summary.txt                # print the table
    python scripts/timing-table.py .test-logs/all/summary.txt --update README.md \\
        --note "fresh clone, warm caches, 2026-11-28"

--update rewrites the block between <!-- timing-table:begin --> and <!-- timing-table:end -->.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

LINE = re.compile(r"^(PASS|FAIL|TOTAL) (.+?)\s+(\d+)s$")
BEGIN, END = "<!-- timing-table:begin -->", "<!-- timing-table:end -->"


def parse(summary: str) -> list[tuple[str, str, int]]:
    rows = []
    for line in summary.splitlines():
        m = LINE.match(line.rstrip())
        if m:
            rows.append((m.group(1), m.group(2).strip(), int(m.group(3))))
    return rows


def table(rows: list[tuple[str, str, int]], note: str) -> str:
    out = [f"Measured by `scripts/test` ({note}):", "", "| part | result | wall time |", "|---|---|---|"]
    total = None
    for status, part, secs in rows:
        if status == "TOTAL":
            total = secs
            continue
        out.append(f"| {part} | {status.lower()} | {secs} s |")
    if total is not None:
        out.append(f"| **whole test command** | | **{total} s ({total / 60:.1f} min)** |")
    return "\n".join(out)


def update(readme: Path, block: str) -> None:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{readme}: no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{block}\n{END}{tail}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("summary", type=Path)
    ap.add_argument("--update", type=Path, help="README to rewrite between the timing-table markers")
    ap.add_argument("--note", default="2 cores, 24 GiB, Debian 12, x86_64")
    args = ap.parse_args()
    rows = parse(args.summary.read_text())
    if not rows:
        sys.exit(f"{args.summary}: no PASS/FAIL lines")
    block = table(rows, args.note)
    if args.update:
        update(args.update, block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
