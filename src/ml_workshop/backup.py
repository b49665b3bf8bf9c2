"""Backups of a workshop (backup.yml, restore.yml): the manifest and its checks.

A backup is a directory on the control node: `<host>/<part>` files (the parts the playbooks
fetch: the hub database copied with SQLite's online backup, archives of the secrets, the state
and the students' work, ...) and `manifest.json`, written last:

    {"format": 1, "created": "<UTC ISO time>", "hosts": {host: {part: {"sha256": ..., "size": N}}}}

restore.yml checks the whole backup against its manifest on the control node before it changes
anything on a server (`verify`), and refuses a host or a part that is not in it.

    python -m ml_workshop.backup manifest DIR      write DIR/manifest.json from the files in DIR
    python -m ml_workshop.backup verify DIR [--host H] [--part P ...]   exit 1 naming each problem
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def scan(root: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{host: {part: {sha256, size}}} of the files `root/<host>/<part>` (nothing deeper, no
    symbolic links: a backup holds regular files only)."""
    hosts: dict[str, dict[str, dict[str, Any]]] = {}
    for hdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        parts = {}
        for f in sorted(hdir.iterdir()):
            if f.is_file() and not f.is_symlink():
                parts[f.name] = {"sha256": sha256_file(f), "size": f.stat().st_size}
        if parts:
            hosts[hdir.name] = parts
    return hosts


def make_manifest(root: Path, created: str | None = None) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created": created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "hosts": scan(root),
    }


def write_manifest(root: Path) -> dict[str, Any]:
    m = make_manifest(root)
    tmp = root / (MANIFEST + ".new")
    tmp.write_text(json.dumps(m, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)
    tmp.replace(root / MANIFEST)
    return m


def problems(
    root: Path, manifest: Mapping[str, Any] | None, host: str | None = None, required: Iterable[str] = ()
) -> list[str]:
    """Why `root` cannot be restored (for `host`, needing the parts `required`), or []."""
    if manifest is None:
        return [f"{root / MANIFEST} is missing: not a finished backup (backup.yml writes it last)"]
    if manifest.get("format") != FORMAT:
        return [f"{root / MANIFEST}: format {manifest.get('format')!r}, this version reads {FORMAT}"]
    hosts = manifest.get("hosts")
    if not isinstance(hosts, dict):
        return [f"{root / MANIFEST}: no hosts"]
    out: list[str] = []
    names = [host] if host is not None else sorted(hosts)
    for h in names:
        parts = hosts.get(h)
        if not isinstance(parts, dict):
            out.append(f"the backup has nothing of {h} (it has {', '.join(sorted(hosts)) or 'no host'})")
            continue
        for p in required:
            if p not in parts:
                out.append(f"{h}: the backup has no {p}")
        for p, meta in sorted(parts.items()):
            if os.sep in p or p in ("", ".", ".."):
                out.append(f"{h}: part name {p!r} is not a file name")
                continue
            f = root / h / p
            if not f.is_file() or f.is_symlink():
                out.append(f"{h}/{p}: missing")
                continue
            size = f.stat().st_size
            if size != meta.get("size"):
                out.append(f"{h}/{p}: {size} bytes, the manifest says {meta.get('size')}")
                continue
            if sha256_file(f) != meta.get("sha256"):
                out.append(f"{h}/{p}: checksum differs from the manifest (damaged or changed)")
    return out


def load_manifest(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"format": f"unreadable ({e})"}
    return data if isinstance(data, dict) else {"format": "not an object"}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ml_workshop.backup", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("manifest", help="write DIR/manifest.json")
    m.add_argument("dir", type=Path)
    v = sub.add_parser("verify", help="check DIR against its manifest")
    v.add_argument("dir", type=Path)
    v.add_argument("--host")
    v.add_argument("--part", action="append", default=[])
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        print(f"{args.dir}: not a directory", file=sys.stderr)
        return 2
    if args.command == "manifest":
        man = write_manifest(args.dir)
        total = sum(p["size"] for parts in man["hosts"].values() for p in parts.values())
        print(json.dumps({"hosts": sorted(man["hosts"]), "bytes": total}))
        return 0
    found = problems(args.dir, load_manifest(args.dir), args.host, args.part)
    for line in found:
        print(line, file=sys.stderr)
    if not found:
        print("ok")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
