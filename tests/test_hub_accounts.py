import pytest

from ml_workshop.accounts import parse_user_list


def test_csv_class_list():
    rows = parse_user_list("username,password\nAlice,secret123\nbob,pw456789\n", "csv")
    assert rows == [
        {"username": "alice", "password": "secret123"},
        {"username": "bob", "password": "pw456789"},
    ]


def test_yaml_class_list():
    pytest.importorskip("yaml")
    rows = parse_user_list("- {username: carol, password: abcdefgh}\n", "yaml")
    assert rows == [{"username": "carol", "password": "abcdefgh"}]


@pytest.mark.parametrize(
    "text,msg",
    [
        ("username,password\na,x\nA,y\n", "duplicate"),
        ("username,password\n,x\n", "missing username"),
        ("username,password\nz,\n", "missing password"),
    ],
)
def test_bad_class_lists(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_user_list(text, "csv")


@pytest.mark.parametrize("name", ["admin", "root", "superuser", "teacher", "{prefix}", "bob.smith"])
def test_class_list_refuses_reserved_and_bad_names(name):
    with pytest.raises(ValueError, match="reserved|cannot be used"):
        parse_user_list(f"username,password\n{name},pw-12345678\n", "csv", admins=["teacher"])


@pytest.fixture
def db(tmp_path):
    pytest.importorskip("nativeauthenticator")
    return f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"


def _rows(db_url):
    import sqlite3

    c = sqlite3.connect(db_url.split(":///", 1)[1])
    try:
        return dict(c.execute("select username, is_authorized from users_info").fetchall())
    finally:
        c.close()


def test_accounts_initialise_the_hub_database(db):
    import sqlite3

    from ml_workshop.accounts import ensure_accounts

    out = ensure_accounts(db, [{"username": "superuser", "password": "su-pass-1234"}], admins=["superuser"])
    assert out == {"created": ["superuser"], "approved": []}
    tables = {r[0] for r in sqlite3.connect(db.split(":///", 1)[1]).execute("select name from sqlite_master")}
    # the hub's own tables, stamped, so `jupyterhub --upgrade-db` finds a current database
    assert {"users", "alembic_version", "users_info"} <= tables
    assert _rows(db) == {"superuser": 1}
    again = ensure_accounts(db, [{"username": "superuser", "password": "su-pass-1234"}], admins=["superuser"])
    assert again == {"created": [], "approved": []}


def test_admin_with_another_password_fails_the_run(db):
    from ml_workshop.accounts import AccountError, ensure_accounts

    # someone signed up as superuser before the role ran (or the password changed)
    ensure_accounts(db, [{"username": "superuser", "password": "someone-elses"}])
    with pytest.raises(AccountError, match="password is not the configured one") as e:
        ensure_accounts(db, [{"username": "superuser", "password": "su-pass-1234"}], admins=["superuser"])
    assert "su-pass-1234" not in str(e.value) and "someone-elses" not in str(e.value)
    # a student's existing account is never checked nor changed
    out = ensure_accounts(db, [{"username": "superuser", "password": "x-other-pw"}], admins=[])
    assert out["created"] == []


def test_unapproved_admin_with_the_right_password_is_approved(db):
    import sqlite3

    from ml_workshop.accounts import ensure_accounts

    ensure_accounts(db, [{"username": "superuser", "password": "su-pass-1234"}])
    c = sqlite3.connect(db.split(":///", 1)[1])
    c.execute("update users_info set is_authorized = 0")
    c.commit()
    c.close()
    out = ensure_accounts(db, [{"username": "superuser", "password": "su-pass-1234"}], admins=["superuser"])
    assert out == {"created": [], "approved": ["superuser"]}
    assert _rows(db) == {"superuser": 1}


def test_dry_run_writes_nothing(db, tmp_path):
    from ml_workshop.accounts import ensure_accounts

    out = ensure_accounts(db, [{"username": "superuser", "password": "su-pass-1234"}], dry_run=True)
    assert out["created"] == ["superuser"]
    assert not (tmp_path / "jupyterhub.sqlite").exists() or "users_info" not in str(
        (tmp_path / "jupyterhub.sqlite").read_bytes()
    )


def test_main_fails_with_a_message_and_no_password(db, tmp_path, capsys):
    from ml_workshop.accounts import main

    admin = tmp_path / "admin.json"
    admin.write_text('[{"username": "superuser", "password": "su-pass-1234"}]')
    klass = tmp_path / "class.csv"
    klass.write_text("username,password\nalice,alice-pw-123\nadmin,admin-pw-123\n")
    assert main(["--db", db, "--accounts", str(admin), "--class-list", str(klass)]) == 2
    err = capsys.readouterr().err
    assert "hub_preapproved_users_file" in err and "'admin' is reserved" in err
    assert "pw-123" not in err and "su-pass" not in err


def test_accounts_step_runs_with_every_tag_of_the_hub_role():
    """The accounts step runs before the hub starts whenever the role runs a task: it carries
    every tag the hub role's tasks use (like the preflight), but for preflight-only runs."""
    import pathlib
    import re

    role = pathlib.Path(__file__).resolve().parents[1] / "roles" / "hub"
    used: set[str] = set()
    for f in (role / "tasks").glob("*.yml"):
        for m in re.finditer(r"tags: \[([^\]]*)\]", f.read_text()):
            used |= {t.strip() for t in m.group(1).split(",") if t.strip()}
    used -= {"always", "preflight"}
    main = (role / "tasks" / "main.yml").read_text()
    m = re.search(r"import_tasks: accounts\.yml\n\s+tags: \[([^\]]*)\]", main)
    assert m, "roles/hub/tasks/main.yml: the accounts import has no tags list"
    tags = {t.strip() for t in m.group(1).split(",")}
    assert tags >= used, f"the accounts step lacks tags {sorted(used - tags)}"
    # and it comes before the hub is started
    assert main.index("import_tasks: accounts.yml") < main.index("name: Start the hub")
