import pytest

from ml_workshop.auth import roster_allows


@pytest.mark.parametrize(
    "user, roster, admins, expected",
    [
        ("alice", set(), {"superuser"}, True),  # no roster: everyone approved may log in
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


def test_roster_config_turns_allow_all_off():
    # JupyterHub skips check_allowed while allow_all is True (the hub's base config sets it).
    import pathlib

    import yaml

    wiring = yaml.safe_load(
        (pathlib.Path(__file__).parent.parent / "group_vars" / "npu_servers.yml").read_text()
    )
    assert "c.Authenticator.allow_all = False" in wiring["hub_extra_config"]
