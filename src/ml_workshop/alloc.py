"""Pure allocation logic for student servers: NPUs per policy and stable SSH host ports.

Nothing here touches Docker or the filesystem; the spawner feeds in the current state
(a dict loaded from the state store) and persists what these functions return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import messages

POLICIES = ("shared", "exclusive", "static")


class AllocationError(Exception):
    """A request that cannot be satisfied. The message is for the log; `reason` and `params`
    pick the student's words in `messages` (NPU_FULL, SSH_PORTS_FULL)."""

    def __init__(self, message: str, reason: str = "", **params: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.params = params


def _as_int(value: Any) -> Any:
    """An integer, or a string of digits (as an inventory may give it) as an integer; anything
    else unchanged, for the checks below to refuse."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def validate_npu_settings(
    ids: Iterable[Any] | None,
    policy: str,
    per_user: Any = 1,
    static_map: Mapping[str, Iterable[Any]] | None = None,
    known_users: Iterable[str] | None = None,
) -> list[str]:
    """Return a list of error strings (empty when the settings are usable), each naming the
    hub role's variable. The hub role's preflight calls this (filter hub_npu_settings_problems).

    ids: the NPU ids of this host; policy: one of POLICIES; per_user: NPUs per server under
    `exclusive`; static_map: {username: [ids]} under `static`. Integers given as strings of
    digits count as integers (the hub's settings file converts them).
    """
    errors = []
    ids = [_as_int(i) for i in ids or []]
    per_user = _as_int(per_user)
    static_map = {user: [_as_int(i) for i in uids or []] for user, uids in (static_map or {}).items()}
    if policy not in POLICIES:
        errors.append(f"hub_npu_policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids):
        errors.append(f"hub_npu_ids must be non-negative integers, not {ids!r}")
        return errors
    dups = sorted({i for i in ids if list(ids).count(i) > 1})
    if dups:
        errors.append(f"hub_npu_ids lists NPU ids more than once: {dups}")
    if policy == "exclusive":
        if not isinstance(per_user, int) or per_user < 1:
            errors.append(f"hub_npu_per_user must be an integer >= 1, not {per_user!r}")
        elif ids and per_user > len(set(ids)):
            errors.append(
                f"hub_npu_per_user ({per_user}) is larger than the number of NPUs ({len(set(ids))})"
            )
    if policy == "static":
        for user, uids in static_map.items():
            unknown = sorted(set(uids) - set(ids), key=str)
            if unknown:
                errors.append(
                    f"hub_npu_static_map gives {user!r} NPU ids {unknown} that are not in hub_npu_ids {sorted(ids)}"
                )
    return errors


def allocate_npus(
    policy: str,
    ids: Iterable[int],
    username: str,
    current: Mapping[str, Iterable[int]],
    per_user: int = 1,
    static_map: Mapping[str, Iterable[int]] | None = None,
) -> list[int]:
    """Return the sorted NPU ids for `username`.

    current: {username: [ids]} of servers holding NPUs now (exclusive policy); the caller
    has already dropped entries of servers that are no longer running.
    Raises AllocationError when the request cannot be met.
    """
    ids = sorted(set(ids))
    if policy == "shared":
        return ids
    if policy == "static":
        return sorted(set((static_map or {}).get(username, [])) & set(ids))
    if policy != "exclusive":
        raise AllocationError(f"unknown NPU policy {policy!r}")
    if username in current:
        held = sorted(i for i in current[username] if i in ids)
        if len(held) == per_user:
            return held
    used = {i for user, held in current.items() if user != username for i in held}
    free = [i for i in ids if i not in used]
    if len(free) < per_user:
        raise AllocationError(
            f"No free NPU on this server: all {len(ids)} NPUs are in use by other students' servers "
            f"({per_user} needed, {len(free)} free). Please try again later or ask the organisers.",
            messages.NPU_FULL,
            total=len(ids),
            needed=per_user,
            free=len(free),
        )
    return free[:per_user]


def allocate_port(
    username: str, current: Mapping[str, int], start: int, end: int, reserved: Iterable[int] = ()
) -> int:
    """Return the SSH host port of `username`: the one recorded in `current` ({username: port})
    when there is one, else the lowest port in [start, end] neither taken nor reserved."""
    if username in current:
        return current[username]
    taken = set(current.values()) | set(reserved)
    for port in range(start, end + 1):
        if port not in taken:
            return port
    raise AllocationError(
        f"No free SSH port left in {start}-{end}; ask the organisers to widen hub_ssh_port_range.",
        messages.SSH_PORTS_FULL,
    )


def parse_id_list(text: object) -> list[int]:
    """Parse an ASCEND_VISIBLE_DEVICES-style list ("0,1", "0-3", "") into sorted ints."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = (int(x) for x in part.split("-", 1))
            if hi < lo:
                raise ValueError(f"bad range {part!r}")
            out.update(range(lo, hi + 1))
        else:
            out.add(int(part))
    return sorted(out)


def format_id_list(ids: Iterable[int]) -> str:
    """Format ids for ASCEND_VISIBLE_DEVICES ("0,1"); never `all`, which the runtime rejects."""
    return ",".join(str(i) for i in sorted(ids))
