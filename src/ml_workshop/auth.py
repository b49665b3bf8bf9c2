"""NativeAuthenticator for the workshop: a per-server roster, the user-name rules of
`ml_workshop.names` (reserved names refused at sign-up, one pattern), a per-address rate limit in
front of bcrypt, and no name-based lockout of admins.

Several NPU servers each run their own hub; a class list assigns each student to one server.
`allowed_users` would do the filtering but NativeAuthenticator treats everyone in it as
pre-approved at sign-up, skipping the admin's approval at /hub/authorize. The roster here only
filters: a student not on this server's roster cannot log in (admins always can); approval still
happens as usual.

Why sign-up needs its own refusal of admin names: NativeAuthenticator pre-approves a sign-up
whose name is in admin_users (create_user: `username in get_authed_users()`), so whoever signs up
as `superuser` before the role created that account would be the hub's admin.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import SignUpHandler
from tornado import web
from traitlets import Float, Integer, List, Set, Unicode

from . import names
from .hostnet import plain_address as _plain


def roster_allows(username: str, roster: Collection[str], admins: Collection[str]) -> bool:
    """True when `username` may log in to this server: on its roster, or an admin.

    hubconfig.apply turns the roster on only when the site has one, so an empty roster here
    means "no student is assigned to this server", not "everyone"."""
    return username in roster or username in admins


class TokenBucket:
    """Per-key token buckets: `burst` attempts at once, refilled at `per_minute` a minute.
    Buckets that are full again are forgotten, so memory stays bounded by the active keys."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, int(burst))
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 10000:
                self._prune(now)
            return allowed

    def _prune(self, now: float) -> None:
        for key, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self.rate >= self.burst:
                del self._buckets[key]


def client_address(request: Any, trusted_proxies: Collection[str] = ()) -> str:
    """The address a login or sign-up came from, for the rate limit.

    Not tornado's request.remote_ip alone: with xheaders (JupyterHub turns them on) it is taken
    from X-Real-Ip or X-Forwarded-For, which any client may send through configurable-http-proxy.
    So: the real peer of the connection, and only when that peer is a trusted proxy (loopback or
    any address of this host, where the proxy connects from) the last X-Forwarded-For hop, which the
    proxy appended itself."""
    context = getattr(getattr(request, "connection", None), "context", None)
    peer = _plain(getattr(context, "_orig_remote_ip", None) or request.remote_ip or "")
    try:
        trusted = ipaddress.ip_address(peer).is_loopback or peer in trusted_proxies
    except ValueError:
        trusted = peer in trusted_proxies
    if trusted:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        if hops:
            return _plain(hops[-1])
    return peer  # already plain


class WorkshopSignUpHandler(SignUpHandler):
    """/hub/signup: the user-name rule shown on the page, a refused name explained, and the rate
    limit applied before NativeAuthenticator hashes anything."""

    def render_template(self, name: str, **kwargs: Any) -> Any:
        if name == "signup.html":
            name = "mlw-signup.html"  # ours: extends NativeAuthenticator's signup.html
            kwargs.setdefault(
                "username_rule",
                names.describe(
                    self.authenticator.username_pattern_rule, getattr(self.authenticator, "language", "en")
                ),
            )
            kwargs.setdefault("open_signup", self.authenticator.open_signup)
        return super().render_template(name, **kwargs)

    async def post(self) -> None:
        if not self.authenticator.enable_signup:
            raise web.HTTPError(404)
        self.authenticator.check_rate(self.request)
        username = self.authenticator.normalize_username(self.get_body_argument("username", "", strip=False))
        problem = self.authenticator.signup_problem(username)
        if problem:
            self.authenticator.log.warning("Sign-up as %r refused: %s", username, problem)
            html = await self.render_template(
                "signup.html",
                ask_email=self.authenticator.ask_email_on_signup,
                result_message=problem,
                alert="alert-danger",
                two_factor_auth=self.authenticator.allow_2fa,
                two_factor_auth_user=False,
                two_factor_auth_value="",
                recaptcha_key=self.authenticator.recaptcha_key,
                tos=self.authenticator.tos,
            )
            self.set_status(400)
            self.finish(html)
            return
        await super().post()


class WorkshopAuthenticator(NativeAuthenticator):
    """Configure the roster with `allow_all = False`: JupyterHub consults check_allowed only then.

    NativeAuthenticator's authenticate() has already refused unapproved users and wrong
    passwords; check_allowed only adds the roster."""

    roster = Set(Unicode(), config=True, help="Students assigned to this server (admins always log in).")
    language = Unicode("en", config=True, help="hub_language: the language of the sign-up page's name rule")
    reserved_usernames = List(
        Unicode(),
        default_value=list(names.DEFAULT_RESERVED),
        config=True,
        help="Names nobody may sign up with (the admin users are refused too).",
    )
    username_pattern_rule = Unicode(
        names.DEFAULT_PATTERN,
        config=True,
        help="Regular expression a user name must match to sign up (the class list and the roster use it too). "
        "Not applied to logins or to users an admin creates (the spawner escapes or refuses odd names).",
    )
    rate_per_minute = Float(
        30.0, config=True, help="Login and sign-up attempts a minute per client address (0: no limit)"
    )
    rate_burst = Integer(60, config=True, help="Attempts a client address may make at once")
    trusted_proxies = Set(
        Unicode(),
        config=True,
        help="Addresses the proxy connects from (X-Forwarded-For is read only from them)",
    )

    _bucket: TokenBucket | None = None

    # --- names ---------------------------------------------------------------------------------

    def signup_problem(self, username: str) -> str:
        return names.signup_problem(
            username, self.username_pattern_rule, self.reserved_usernames, self.admin_users
        )

    def create_user(self, username: str, password: str, **kwargs: Any) -> Any:
        """The sign-up path: never an admin's or a reserved name (NativeAuthenticator would
        approve an admin's name at once)."""
        problem = self.signup_problem(self.normalize_username(username))
        if problem:
            self.log.warning("Sign-up as %r refused: %s", username, problem)
            return None
        return super().create_user(username, password, **kwargs)

    def check_allowed(self, username: str, authentication: dict[str, Any] | None = None) -> bool:
        if roster_allows(username, self.roster, self.admin_users):
            return True
        self.log.warning("%s is not on this server's roster; login refused", username)
        return False

    # --- guessing --------------------------------------------------------------------------------

    def check_rate(self, request: Any) -> None:
        """Refuse (HTTP 429) an attempt over the per-address limit, before any bcrypt work."""
        if self.rate_per_minute <= 0:
            return
        if self._bucket is None:
            self._bucket = TokenBucket(self.rate_per_minute, self.rate_burst)
        address = client_address(request, self.trusted_proxies)
        if not self._bucket.allow(address):
            self.log.warning("Too many login/sign-up attempts from %s; refused", address)
            raise web.HTTPError(
                429, "Too many attempts from your address. Please wait a minute and try again."
            )

    async def authenticate(self, handler: Any, data: dict[str, Any]) -> str | None:
        if handler is not None:
            self.check_rate(handler.request)
        return await super().authenticate(handler, data)

    def add_login_attempt(self, username: str) -> None:
        """NativeAuthenticator locks a name after allowed_failed_logins failures; an admin's name
        is never locked (guessing must not lock out superuser; the address limit still applies)."""
        if username in self.admin_users:
            return
        super().add_login_attempt(username)

    def is_blocked(self, username: str) -> bool:
        return username not in self.admin_users and super().is_blocked(username)

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (path, WorkshopSignUpHandler if path == r"/signup" else h)
            for path, h in super().get_handlers(app)
        ]
