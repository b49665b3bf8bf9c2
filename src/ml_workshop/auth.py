"""NativeAuthenticator with a per-server roster.

Several NPU servers each run their own hub; a class list assigns each student to one server.
`allowed_users` would do the filtering but NativeAuthenticator treats everyone in it as
pre-approved at sign-up, skipping the admin's approval at /hub/authorize. The roster here only
filters: a student not on this server's roster cannot log in (admins always can); approval still
happens as usual.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from nativeauthenticator import NativeAuthenticator
from traitlets import Set, Unicode


def roster_allows(username: str, roster: Collection[str], admins: Collection[str]) -> bool:
    """True when `username` may log in to this server: on its roster, or an admin.

    hubconfig.apply installs this authenticator only when the site has a roster, so an empty
    roster here means "no student is assigned to this server", not "everyone"."""
    return username in roster or username in admins


class WorkshopAuthenticator(NativeAuthenticator):
    """Configure with `allow_all = False`: JupyterHub consults check_allowed only then.

    NativeAuthenticator's authenticate() has already refused unapproved users and wrong
    passwords; this only adds the roster."""

    roster = Set(Unicode(), config=True, help="Students assigned to this server (admins always log in).")

    def check_allowed(self, username: str, authentication: dict[str, Any] | None = None) -> bool:
        if roster_allows(username, self.roster, self.admin_users):
            return True
        self.log.warning("%s is not on this server's roster; login refused", username)
        return False
