"""Tenant boundary at the door (issue 12): reserved names and the user-name pattern at sign-up,
the per-address rate limit in front of bcrypt, no name-based lockout of admins."""

import asyncio
from types import SimpleNamespace

import pytest

from ml_workshop import hostnet, names
from ml_workshop.auth import TokenBucket, client_address


@pytest.mark.parametrize(
    "name, refused",
    [
        ("alice", ""),
        ("bob-2_x", ""),
        ("superuser", "reserved"),
        ("Admin", "reserved"),
        ("root", "reserved"),
        ("teacher", "reserved"),  # an admin's name
        ("{prefix}", "cannot be used"),
        ("x{prefix.foo}", "cannot be used"),
        ("bob.smith", "cannot be used"),
        ("1abc", "cannot be used"),
        ("a" * 33, "cannot be used"),
        ("", "cannot be used"),
    ],
)
def test_signup_problem(name, refused):
    got = names.signup_problem(name, admins={"teacher"})
    assert (got == "") if not refused else refused in got, got


def test_bad_pattern_is_reported():
    assert "not a regular expression" in names.name_problem("alice", "^[a-")


def test_token_bucket_per_key():
    now = [0.0]
    b = TokenBucket(per_minute=6, burst=3, clock=lambda: now[0])
    assert [b.allow("1.2.3.4") for _ in range(4)] == [True, True, True, False]
    assert b.allow("5.6.7.8")  # another address has its own bucket
    now[0] += 10  # 6 a minute: one token back after 10 s
    assert b.allow("1.2.3.4") and not b.allow("1.2.3.4")


def _request(peer, headers=None):
    ctx = SimpleNamespace(_orig_remote_ip=peer)
    return SimpleNamespace(
        remote_ip=(headers or {}).get("X-Real-Ip", peer),
        headers=headers or {},
        connection=SimpleNamespace(context=ctx),
    )


def test_client_address_is_not_spoofable():
    # through the proxy (it connects from a trusted address and appends the real client)
    r = _request("172.31.240.1", {"X-Forwarded-For": "6.6.6.6, 10.0.0.7", "X-Real-Ip": "9.9.9.9"})
    assert client_address(r, {"172.31.240.1"}) == "10.0.0.7"
    assert client_address(_request("127.0.0.1", {"X-Forwarded-For": "10.0.0.8"})) == "10.0.0.8"
    # a dual-stack proxy reports IPv4 clients as ::ffff:a.b.c.d: the same bucket
    assert client_address(_request("127.0.0.1", {"X-Forwarded-For": "::ffff:10.0.0.8"})) == "10.0.0.8"
    # straight to the hub port (e.g. from a student's container): its headers are not believed
    r = _request("172.31.240.9", {"X-Forwarded-For": "1.1.1.1", "X-Real-Ip": "2.2.2.2"})
    assert client_address(r, {"172.31.240.1"}) == "172.31.240.9"


def test_proxy_connecting_from_another_local_address_is_trusted():
    # Seen in the test instances: the proxy targets the gateway (172.31.240.1) but its connection
    # arrives from the host's primary address. Trusting only the gateway keyed every proxied
    # request by that address: one bucket for the whole class. The host's own addresses are trusted.
    trusted = {"172.31.240.1"} | {"10.1.2.3", "127.0.0.1"}
    for client in ("10.0.0.7", "10.0.0.8"):
        assert client_address(_request("10.1.2.3", {"X-Forwarded-For": client}), trusted) == client
    assert client_address(_request("::ffff:10.1.2.3", {"X-Forwarded-For": "10.0.0.9"}), trusted) == "10.0.0.9"
    # a peer that is not one of ours still names only itself
    assert client_address(_request("10.1.2.4", {"X-Forwarded-For": "10.0.0.7"}), trusted) == "10.1.2.4"


def test_local_addresses_from_iproute2_json():
    sample = (
        '[{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"},'
        ' {"family": "inet6", "local": "::1"}]},'
        ' {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.1.2.3", "prefixlen": 24},'
        ' {"family": "inet", "local": "10.1.2.30"}, {"family": "inet6", "local": "fe80::1"}]},'
        ' {"ifname": "br-x", "addr_info": []}, {"ifname": "dummy"}]'
    )
    assert hostnet.parse_ip_addr_json(sample) == {"127.0.0.1", "::1", "10.1.2.3", "10.1.2.30", "fe80::1"}
    assert hostnet.parse_ip_addr_json("") == set()


def test_local_addresses_of_this_machine_include_loopback():
    found = hostnet.local_addresses()
    assert "127.0.0.1" in found  # real reading of this machine (iproute2 or the host name)


@pytest.fixture
def auth():
    pytest.importorskip("nativeauthenticator")
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from ml_workshop.auth import WorkshopAuthenticator

    db = sessionmaker(bind=create_engine("sqlite://"))()
    a = WorkshopAuthenticator(
        db=db,
        admin_users={"teacher"},
        minimum_password_length=8,
        allowed_failed_logins=2,
        seconds_before_next_try=600,
        rate_per_minute=60,
        rate_burst=1000,
    )
    yield a
    db.close()


def _login(a, name, password, ip="10.0.0.5"):
    handler = SimpleNamespace(request=_request(ip))
    return asyncio.run(a.authenticate(handler, {"username": name, "password": password}))


def test_signup_refuses_admin_and_reserved_names(auth):
    # NativeAuthenticator alone would create `teacher` pre-approved: an admin account for anyone
    for name in ["teacher", "superuser", "admin", "root", "Root", "{prefix}", "x{prefix.foo}", "a.b"]:
        assert auth.create_user(name, "long-enough-pw-1") is None, name
        assert auth.get_user(name.lower()) is None
    alice = auth.create_user("alice", "long-enough-pw-1")
    assert alice is not None and not alice.is_authorized  # still waits for the admin


def test_username_pattern_is_a_signup_rule(auth):
    # logins and admin-created users are not filtered by it (the spawner refuses or escapes odd
    # names: test_spawner_tenant.py); NativeAuthenticator's own rule still holds
    assert auth.validate_username("alice") and auth.validate_username("teacher")
    assert auth.validate_username("_rf")
    assert not auth.validate_username("a b")


def test_guessing_never_locks_out_an_admin(auth):
    import bcrypt
    from nativeauthenticator.orm import UserInfo

    for name in ["teacher", "alice"]:
        pw = bcrypt.hashpw(f"{name}-good-pw".encode(), bcrypt.gensalt(4))
        auth.db.add(UserInfo(username=name, password=pw, is_authorized=True))
    auth.db.commit()
    for _ in range(5):
        assert _login(auth, "teacher", "guess") is None
        assert _login(auth, "alice", "guess") is None
    assert _login(auth, "teacher", "teacher-good-pw") == "teacher"
    assert _login(auth, "alice", "alice-good-pw") is None  # locked by name (allowed_failed_logins)


def test_rate_limit_per_address_before_bcrypt(auth, monkeypatch):
    from tornado import web

    auth.rate_per_minute, auth.rate_burst = 1, 3
    checked = []
    monkeypatch.setattr(type(auth), "get_user", lambda self, n: checked.append(n))
    for _ in range(3):
        assert _login(auth, "teacher", "guess") is None
    with pytest.raises(web.HTTPError) as e:
        _login(auth, "teacher", "guess")
    assert e.value.status_code == 429
    assert len(checked) == 3  # the refused attempt never reached the password check
    assert _login(auth, "teacher", "guess", ip="10.0.0.6") is None  # another address: its own budget


def test_hub_config_carries_the_account_rules(tmp_path):
    from test_hub_config import settings as hub_settings
    from traitlets.config import Config

    from ml_workshop import hubconfig

    s = hub_settings(tmp_path)
    c = hubconfig.apply(Config(), s)
    assert c.JupyterHub.authenticator_class == "ml_workshop.auth.WorkshopAuthenticator"
    assert c.NativeAuthenticator.enable_signup is True
    assert c.WorkshopAuthenticator.reserved_usernames == list(names.DEFAULT_RESERVED)
    assert c.WorkshopAuthenticator.username_pattern_rule == names.DEFAULT_PATTERN
    s["auth"].update(
        signup_enabled=False,
        reserved_usernames=["teacher"],
        username_pattern="^[a-z]+$",
        rate_per_minute=5,
        rate_burst=7,
    )
    c = hubconfig.apply(Config(), s)
    assert c.NativeAuthenticator.enable_signup is False
    assert c.WorkshopAuthenticator.reserved_usernames == ["teacher"]
    assert c.WorkshopAuthenticator.username_pattern_rule == "^[a-z]+$"
    assert (c.WorkshopAuthenticator.rate_per_minute, c.WorkshopAuthenticator.rate_burst) == (5.0, 7)
    assert s["hub_connect_ip"] in c.WorkshopAuthenticator.trusted_proxies
