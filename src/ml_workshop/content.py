"""The workshop content on each NPU server (`<hub_data_dir>/workshop-content`, mounted read-only
in students' containers): which directories always exist, and which files are downloaded from
URLs (datasets and model weights from a mirror or ModelScope's HTTP download URLs), each checked
against its sha256. The hub role's preflight and its directory list use these rules."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
DIR_MODE = "0755"


def relative_problem(path: object, what: str) -> str:
    """Why `path` cannot name something under workshop-content/ ('' when it can): relative,
    normalised, no `..`, no empty or hidden-dot segments, no control characters."""
    if not isinstance(path, str) or not path:
        return f"{what} must be a non-empty relative path, not {path!r}"
    if path.startswith("/") or "\\" in path or any(ord(ch) < 32 for ch in path):
        return f"{what} {path!r} must be relative to workshop-content/ (no leading /, no backslash)"
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(path) != path:
        return f"{what} {path!r} must be a plain relative path (no empty, . or .. segments)"
    return ""


def subdir_problems(subdirs: object) -> list[str]:
    """What is wrong with `hub_workshop_content_dirs` (names made under workshop-content/)."""
    if not isinstance(subdirs, list):
        return [f"hub_workshop_content_dirs must be a list of relative paths, not {subdirs!r}"]
    return [p for p in (relative_problem(d, "hub_workshop_content_dirs entry") for d in subdirs) if p]


def download_problems(items: object) -> list[str]:
    """What is wrong with `hub_workshop_content_downloads` (a list of {url, sha256, dest});
    [] when every entry can be downloaded and checked."""
    if not isinstance(items, list):
        return [f"hub_workshop_content_downloads must be a list of {{url, sha256, dest}}, not {items!r}"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for n, item in enumerate(items, start=1):
        where = f"hub_workshop_content_downloads entry {n}"
        if not isinstance(item, Mapping):
            problems.append(f"{where} must be a mapping with url, sha256 and dest, not {item!r}")
            continue
        extra = sorted(set(item) - {"url", "sha256", "dest"})
        if extra:
            problems.append(f"{where} has unknown keys {extra} (url, sha256, dest)")
        url, digest, dest = item.get("url"), item.get("sha256"), item.get("dest")
        if not isinstance(url, str) or not _URL.match(url):
            problems.append(f"{where}: url must be an http:// or https:// URL, not {url!r}")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            problems.append(f"{where}: sha256 must be the file's SHA-256 as 64 hex digits, not {digest!r}")
        bad = relative_problem(dest, f"{where}: dest")
        if bad:
            problems.append(bad)
        elif isinstance(dest, str):
            if dest in seen:
                problems.append(f"{where}: dest {dest!r} is also entry {seen[dest]}'s")
            seen.setdefault(dest, n)
    return problems


def content_dirs(
    base: str,
    subdirs: Iterable[str],
    downloads: Iterable[Mapping[str, Any]],
    owner: int | str = "root",
    group: int | str = "root",
) -> list[dict[str, str]]:
    """The directories to keep: `base`, each of `subdirs` and every parent of a download's
    dest, each with all its parents under `base`, in order (a parent before its children), owned
    by `owner`:`group` (the student image's uid: instructors edit the content as that uid)."""
    wanted: set[str] = set()
    rels = [str(d) for d in subdirs] + [posixpath.dirname(str(i["dest"])) for i in downloads]
    for rel in rels:
        while rel:
            wanted.add(rel)
            rel = posixpath.dirname(rel)
    base = base.rstrip("/")
    own = {"mode": DIR_MODE, "owner": str(owner), "group": str(group)}
    out = [{"path": base, **own}]
    out += [{"path": f"{base}/{rel}", **own} for rel in sorted(wanted, key=lambda r: (r.count("/"), r))]
    return out
