"""Which of the directories and files a role manages differ from what it wants, from one command.

A role that keeps N directories used to run the file module N times on every run, each a round
trip to the host (issue 13: a no-op re-run in <= 60 s). Instead it runs once

    stat -c '%a %u %g %F %n' -- PATH...   (STAT_FORMAT: numeric owner and group)

and loops the file module over `dirs_to_fix(wanted, that output)` only: nothing on a converged
host, the directories that are missing or differ otherwise (the file module then does the work,
with --check and --diff as before).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

STAT_FORMAT = "%a %u %g %F %n"  # numeric owner and group: a uid may have no name on the host


def stat_argv(wanted: Iterable[Mapping[str, Any]]) -> list[str]:
    """The command whose output dirs_to_fix reads, for the paths of `wanted`."""
    return ["stat", "-c", STAT_FORMAT, "--", *(str(item["path"]) for item in wanted)]


def numeric_id(value: object) -> int | str:
    """A wanted owner or group as the number stat prints: root is 0, digits are the id; any
    other name is returned as it is (it never equals a number: the task then runs, as before)."""
    text = str(value)
    if text == "root":
        return 0
    return int(text) if text.isdigit() else text


def parse_stat(output: str) -> dict[str, tuple[int, str, str, str]]:
    """{path: (mode, owner, group, file type)} from STAT_FORMAT lines (paths may hold spaces;
    lines that do not parse are ignored: such a path counts as missing)."""
    found: dict[str, tuple[int, str, str, str]] = {}
    for line in output.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4:
            continue
        mode, owner, group, rest = parts
        # %F is "directory", "regular file", "symbolic link", ... and may hold spaces itself
        for kind in ("directory", "regular file", "regular empty file", "symbolic link"):
            if rest.startswith(kind + " "):
                path = rest[len(kind) + 1 :]
                break
        else:
            continue
        try:
            found[path] = (int(mode, 8), owner, group, kind)
        except ValueError:
            continue
    return found


def dirs_to_fix(wanted: Iterable[Mapping[str, Any]], stat_output: str) -> list[dict[str, Any]]:
    """The entries of `wanted` ({path, mode, owner?, group?}; owner and group default to root)
    whose directory is missing, not a directory, or has another mode, owner or group."""
    found = parse_stat(stat_output)
    out: list[dict[str, Any]] = []
    for item in wanted:
        path = str(item["path"])
        want = (
            int(str(item["mode"]), 8),
            numeric_id(item.get("owner", "root")),
            numeric_id(item.get("group", "root")),
            "directory",
        )
        have = found.get(path)
        if have is None or (have[0], numeric_id(have[1]), numeric_id(have[2]), have[3]) != want:
            out.append(dict(item))
    return out


# Prints "<sha256> <mode> <owner> <group> <path>" for each path that is a regular file.
_CHECKSUM_SCRIPT = (
    'for p do [ -f "$p" ] && [ ! -L "$p" ] || continue; '
    'printf "%s %s %s\\n" "$(sha256sum < "$p" | cut -c1-64)" "$(stat -c "%a %u %g" -- "$p")" "$p"; done'
)


def checksum_argv(wanted: Iterable[Mapping[str, Any]]) -> list[str]:
    """The command whose output unchanged_files reads, for the `dest` of each wanted file."""
    return ["/bin/sh", "-c", _CHECKSUM_SCRIPT, "sh", *(str(item["dest"]) for item in wanted)]


def unchanged_files(wanted: Iterable[Mapping[str, Any]], checksum_output: str) -> list[str]:
    """The `dest` of each wanted file ({dest, content, mode, owner?, group?}: content as the
    template or copy module would write it, rendered on the control node) whose file on the host
    already has that content, mode, owner and group: its template/copy task can be skipped. A
    file that differs, is missing or cannot be read is not listed (its task runs as always)."""
    found: dict[str, tuple[str, int, int | str, int | str]] = {}
    for line in checksum_output.splitlines():
        parts = line.split(" ", 4)
        if len(parts) != 5:
            continue
        digest, mode, owner, group, path = parts
        try:
            found[path] = (digest, int(mode, 8), numeric_id(owner), numeric_id(group))
        except ValueError:
            continue
    out: list[str] = []
    for item in wanted:
        content = str(item["content"]).encode("utf-8")
        want = (
            hashlib.sha256(content).hexdigest(),
            int(str(item["mode"]), 8),
            numeric_id(item.get("owner", "root")),
            numeric_id(item.get("group", "root")),
        )
        if found.get(str(item["dest"])) == want:
            out.append(str(item["dest"]))
    return out
