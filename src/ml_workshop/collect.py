"""collect-work.yml: the summary of the students' work collected from a server.

The hub role lists each work directory on the server as one line `<name> <files> <bytes>` (a
shell loop with find and du); these functions read those lines and write the table the
organiser gets next to the archives (`<server>/summary.md`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import container


def parse_listing(lines: Iterable[str]) -> list[dict[str, Any]]:
    """[{name, files, bytes}] from `<name> <files> <bytes>` lines, sorted by name. A line that
    does not parse, or whose name the spawner would not give a work directory
    (container.safe_name), is left out: it is not a student's directory."""
    rows = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
            continue
        try:
            container.safe_name(parts[0])
        except ValueError:
            continue
        rows.append({"name": parts[0], "files": int(parts[1]), "bytes": int(parts[2])})
    return sorted(rows, key=lambda r: r["name"])


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def summary_table(rows: Iterable[Mapping[str, Any]], server: str, when: str = "") -> str:
    """A Markdown table of the collected work: one row per student, then the total."""
    rows = list(rows)
    head = f"# Students' work collected from {server}" + (f" ({when})" if when else "")
    out = [head, "", "| student | files | size | archive |", "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['name']} | {r['files']} | {human_size(int(r['bytes']))} | {r['name']}.tar.gz |")
    total_files = sum(int(r["files"]) for r in rows)
    total_bytes = sum(int(r["bytes"]) for r in rows)
    out.append(f"| **{len(rows)} students** | {total_files} | {human_size(total_bytes)} | |")
    return "\n".join(out) + "\n"
