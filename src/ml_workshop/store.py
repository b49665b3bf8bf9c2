"""A small JSON state file (0600, atomic replace, flock) holding NPU allocations and SSH ports,
so both survive hub restarts. Layout: {"npus": {user: [ids]}, "ssh_ports": {user: port},
"ports": {port name: {user: port}}} (the profiles' extra ports, e.g. OpenClaw's gateway).

The file is checked whenever it is read. A damaged one (not JSON, the wrong shape, an NPU or a
port held twice) is never trusted: a transaction that can rebuild the state (the spawner's
allocation, from the running containers' labels) moves it aside to `<file>.corrupt-<UTC time>`
and starts from the rebuilt state; one that cannot (a release) changes nothing and leaves the
file to the next allocation."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

EMPTY = {"npus": {}, "ssh_ports": {}, "ports": {}, "placed": {}, "homes": {}}

log = logging.getLogger("ml_workshop.store")


class StateDamaged(ValueError):
    """The state file cannot be trusted; the message says why."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(data: Any) -> dict[str, dict[str, Any]]:
    """The state as a fresh dict when `data` is a usable state, else StateDamaged."""
    if not isinstance(data, dict):
        raise StateDamaged(f"not a JSON object but {type(data).__name__}")
    npus, ports = data.get("npus", {}), data.get("ssh_ports", {})
    if not isinstance(npus, dict) or not isinstance(ports, dict):
        raise StateDamaged("npus and ssh_ports must be objects")
    held: dict[int, str] = {}
    for user, ids in npus.items():
        if not isinstance(ids, list) or not all(_is_int(i) and i >= 0 for i in ids):
            raise StateDamaged(f"npus of {user!r} is not a list of NPU ids: {ids!r}")
        for i in ids:
            if i in held:
                raise StateDamaged(f"NPU {i} is held by both {held[i]!r} and {user!r}")
            held[i] = user
    named = data.get("ports", {})
    if not isinstance(named, dict) or not all(isinstance(v, dict) for v in named.values()):
        raise StateDamaged("ports must be an object of objects ({name: {user: port}})")
    owners: dict[int, str] = {}
    for kind, table in [("SSH", ports), *((f"{name!r}", t) for name, t in sorted(named.items()))]:
        for user, port in table.items():
            if not _is_int(port) or not 1 <= port <= 65535:
                raise StateDamaged(f"the {kind} port of {user!r} is not a port: {port!r}")
            if port in owners:
                raise StateDamaged(f"port {port} is held twice ({owners[port]} and {kind} port of {user!r})")
            owners[port] = f"the {kind} port of {user!r}"
    # cluster mode (ml_workshop.cluster): where each server runs now and where each student's work is
    placed, homes = data.get("placed", {}), data.get("homes", {})
    if not isinstance(placed, dict) or not isinstance(homes, dict):
        raise StateDamaged("placed and homes must be objects")
    for user, where in placed.items():
        if (
            not isinstance(where, dict)
            or not isinstance(where.get("node"), str)
            or not isinstance(where.get("npus", []), list)
            or not all(_is_int(i) and i >= 0 for i in where.get("npus", []))
        ):
            raise StateDamaged(f"placed of {user!r} is not {{node, npus}}: {where!r}")
    if not all(isinstance(n, str) for n in homes.values()):
        raise StateDamaged("homes must map users to node names")
    return {
        "npus": {u: list(v) for u, v in npus.items()},
        "ssh_ports": dict(ports),
        "ports": {name: dict(t) for name, t in named.items()},
        "placed": {u: {"node": w["node"], "npus": list(w.get("npus", []))} for u, w in placed.items()},
        "homes": dict(homes),
    }


class StateStore:
    def __init__(self, path: str) -> None:
        self.path = path

    def _read(self) -> dict[str, dict[str, Any]]:
        """The state; {} parts when there is no file; StateDamaged when it cannot be trusted."""
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            return {k: {} for k in EMPTY}
        try:
            data = json.loads(text)
        except ValueError as e:
            raise StateDamaged(f"not JSON ({e})") from e
        return validate(data)

    def load(self) -> dict[str, dict[str, Any]]:
        """Read-only view (the connection page): an empty state when the file is damaged."""
        try:
            return self._read()
        except StateDamaged as e:
            log.error("State file %s is damaged (%s); showing an empty state", self.path, e)
            return {k: {} for k in EMPTY}

    def _write(self, data: dict[str, Any]) -> None:
        d = os.path.dirname(self.path) or "."
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=d, prefix=".state-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _move_aside(self) -> str:
        base = aside = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        n = 1
        while os.path.exists(aside):
            aside, n = f"{base}-{n}", n + 1
        os.replace(self.path, aside)
        return aside

    @contextlib.contextmanager
    def transaction(
        self, rebuild: Callable[[], dict[str, dict[str, Any]]] | None = None
    ) -> Iterator[dict[str, dict[str, Any]]]:
        """Yield the state dict; it is written back when the block ends without an error.

        A damaged file: with `rebuild`, moved aside and replaced by rebuild()'s state (logged);
        without it, the block gets a scratch state and nothing is written."""
        d = os.path.dirname(self.path) or "."
        os.makedirs(d, mode=0o700, exist_ok=True)
        with open(self.path + ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                write = True
                try:
                    data = self._read()
                except StateDamaged as e:
                    if rebuild is None:
                        log.error(
                            "State file %s is damaged (%s); left for the next start to rebuild", self.path, e
                        )
                        data, write = {k: {} for k in EMPTY}, False
                    else:
                        aside = self._move_aside()
                        data = validate(rebuild())
                        log.error(
                            "State file %s was damaged (%s): moved to %s and rebuilt from the running "
                            "containers' labels (%d NPU allocations, %d SSH ports; ports of stopped servers "
                            "are assigned again at their next start)",
                            self.path,
                            e,
                            aside,
                            len(data["npus"]),
                            len(data["ssh_ports"]),
                        )
                yield data
                if write:
                    self._write(data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
