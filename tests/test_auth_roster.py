import pytest

from ml_workshop.auth import roster_allows


@pytest.mark.parametrize(
    "user, roster, admins, expected",
    [
        ("alice", set(), {"superuser"}, False),  # roster in force, nobody on this server
        ("superuser", set(), {"superuser"}, True),
        ("alice", {"alice", "carol"}, {"superuser"}, True),
        ("bob", {"alice", "carol"}, {"superuser"}, False),
        ("superuser", {"alice"}, {"superuser"}, True),  # admins are never locked out
    ],
)
def test_roster_allows(user, roster, admins, expected):
    assert roster_allows(user, roster, admins) is expected


def test_authenticator_refuses_users_off_the_roster():
    auth_mod = pytest.importorskip("ml_workshop.auth")
    # NativeAuthenticator.__init__ needs the hub database; the traits are all check_allowed uses.
    a = auth_mod.WorkshopAuthenticator.__new__(auth_mod.WorkshopAuthenticator)
    a.roster, a.admin_users, a.allow_all = {"alice"}, {"superuser"}, False
    assert a.check_allowed("alice") is True
    assert a.check_allowed("superuser") is True
    assert a.check_allowed("bob") is False
    # The roster is not allowed_users, which NativeAuthenticator pre-approves at sign-up.
    assert a.allowed_users == set()


def test_roster_config_turns_allow_all_off(tmp_path):
    # JupyterHub skips check_allowed while allow_all is True (the hub's base config sets it).
    from test_hub_config import settings as hub_settings
    from traitlets.config import Config

    from ml_workshop import hubconfig

    def settings(roster):
        s = hub_settings(tmp_path)
        s["auth"]["roster"], s["server"] = roster, "npu1"
        return s

    c = hubconfig.apply(Config(), settings([{"username": "alice", "server": "npu1"}]))
    assert c.JupyterHub.authenticator_class == "ml_workshop.auth.WorkshopAuthenticator"
    assert c.Authenticator.allow_all is False
    assert c.WorkshopAuthenticator.roster == {"alice"}
    # on a server nobody is assigned to, the roster still holds: admins only
    c = hubconfig.apply(Config(), settings([{"username": "bob", "server": "npu2"}]))
    assert c.Authenticator.allow_all is False and c.WorkshopAuthenticator.roster == set()
    c = hubconfig.apply(Config(), settings([]))
    # always ours (reserved names, the user-name pattern, the rate limit); no roster: allow_all
    assert c.JupyterHub.authenticator_class == "ml_workshop.auth.WorkshopAuthenticator"
    assert c.Authenticator.allow_all is True


@pytest.mark.parametrize(
    "entries, problem",
    [
        ([{"username": "a", "server": "npu1"}, {"username": "b", "server": "npu2"}], None),
        ("alice", "must be a list"),
        ([{"username": "a"}], "needs a username and a server"),
        ([{"username": "a", "server": "npu9"}], "npu9, which is not an NPU server"),
        ([{"username": "a", "server": "npu1"}, {"username": "a", "server": "npu2"}], "on both npu1 and npu2"),
        ([{"username": "Bob.Smith", "server": "npu1"}], "hub_username_pattern"),
        ([{"username": "{prefix}", "server": "npu1"}], "cannot be used"),
    ],
)
def test_roster_problems(entries, problem):
    from ml_workshop.hubconfig import roster_problems

    got = roster_problems(entries, ["npu1", "npu2"])
    assert (got == []) if problem is None else any(problem in p for p in got), got
