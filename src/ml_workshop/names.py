"""User names: one pattern for sign-up, the class list, the roster and the hub's own checks,
and the names nobody may sign up with (the admin's and the reserved ones). Pure."""

from __future__ import annotations

import re
from collections.abc import Collection

DEFAULT_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
DEFAULT_RESERVED = ("superuser", "admin", "root")

_DEFAULT_HINT = "a lowercase letter first, then up to 31 lowercase letters, digits, '-' or '_'"


_DEFAULT_HINTS = {"zh_CN": "以小写字母开头，之后最多 31 个小写字母、数字、“-”或“_”"}
_PATTERN_HINTS = {"zh_CN": "必须匹配正则表达式 {pattern}"}


def describe(pattern: str = DEFAULT_PATTERN, language: str = "en") -> str:
    """What a valid user name looks like, in words for the sign-up page (in `language` where
    there are words for it, else English)."""
    if pattern == DEFAULT_PATTERN:
        return _DEFAULT_HINTS.get(language, _DEFAULT_HINT)
    return _PATTERN_HINTS.get(language, "it must match the regular expression {pattern}").format(
        pattern=pattern
    )


def name_problem(name: object, pattern: str = DEFAULT_PATTERN) -> str:
    """Why `name` cannot be a user name here ('' when it can)."""
    try:
        rule = re.compile(pattern)
    except (re.error, TypeError) as e:
        return f"hub_username_pattern {pattern!r} is not a regular expression ({e})."
    if not isinstance(name, str) or not rule.search(name):
        return f"The user name {name!r} cannot be used: {describe(pattern)}."
    return ""


def is_reserved(
    name: str, reserved: Collection[str] = DEFAULT_RESERVED, admins: Collection[str] = ()
) -> bool:
    """True for names nobody may sign up with: the reserved ones and every admin's."""
    folded = name.strip().lower()
    return folded in {n.lower() for n in reserved} or folded in {n.lower() for n in admins}


def signup_problem(
    name: str,
    pattern: str = DEFAULT_PATTERN,
    reserved: Collection[str] = DEFAULT_RESERVED,
    admins: Collection[str] = (),
) -> str:
    """Why a sign-up (or a class-list entry) under `name` is refused ('' when it is not)."""
    if is_reserved(name, reserved, admins):
        return f"The user name {name!r} is reserved. Please choose another one."
    return name_problem(name, pattern)
