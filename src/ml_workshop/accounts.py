"""Create NativeAuthenticator accounts (the admin `superuser`, a class list) directly in the
hub database, approved, before the hub serves anyone: the role runs this before it starts or
restarts the hub, so nobody can sign up under the admin's name first.

Existing class-list accounts are left alone (passwords and approvals are kept). An existing
admin account must have the configured password: if its stored bcrypt hash does not match,
the run fails (exit 2) with what to do, rather than leaving an account someone else may own.

Usage (with the hub's virtualenv python):
    python -m ml_workshop.accounts --db sqlite:////var/lib/jupyterhub/jupyterhub.sqlite \\
        --accounts /dev/stdin [--class-list FILE] [--pattern RE] [--reserved JSON] [--dry-run]
--accounts: the admin accounts, [{"username": "...", "password": "..."}, ...].
Prints JSON {"created": [...], "approved": [...]}; never a password.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import sys
from collections.abc import Collection, Iterable, Sequence

from . import names


class AccountError(Exception):
    """The accounts cannot be made safely; the message says what to do (no password in it)."""


def parse_user_list(
    text: str,
    fmt: str,
    pattern: str = names.DEFAULT_PATTERN,
    reserved: Collection[str] = names.DEFAULT_RESERVED,
    admins: Collection[str] = (),
) -> list[dict[str, str]]:
    """Parse a pre-approved class list (CSV with a header `username,password` or YAML/JSON list
    of {username, password}) into [{"username", "password"}]. Every name must match `pattern`
    and be neither reserved nor an admin's. Pure."""
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        import yaml  # PyYAML

        rows = yaml.safe_load(text) or []
    out, seen = [], set()
    for n, row in enumerate(rows, 1):
        name = str((row or {}).get("username", "")).strip().lower()
        pw = str((row or {}).get("password", "") or "")
        if not name:
            raise ValueError(f"entry {n}: missing username")
        if name in seen:
            raise ValueError(f"entry {n}: duplicate username {name!r}")
        if not pw:
            raise ValueError(f"entry {n} ({name}): missing password")
        problem = names.signup_problem(name, pattern, reserved, admins)
        if problem:
            raise ValueError(f"entry {n}: {problem}")
        seen.add(name)
        out.append({"username": name, "password": pw})
    return out


def init_db(db_url: str) -> None:
    """Make the hub database what the hub itself would: upgraded when an older JupyterHub made it,
    JupyterHub's tables created and the schema version stamped, then NativeAuthenticator's table."""
    from jupyterhub import dbutil, orm
    from nativeauthenticator.orm import UserInfo
    from sqlalchemy import create_engine

    dbutil.upgrade_if_needed(db_url, log=logging.getLogger("ml_workshop.accounts"))
    orm.new_session_factory(db_url)
    UserInfo.__table__.create(create_engine(db_url), checkfirst=True)


def ensure_accounts(
    db_url: str,
    accounts: Iterable[dict[str, str]],
    admins: Collection[str] = (),
    dry_run: bool = False,
) -> dict[str, list[str]]:
    """Create the missing accounts, approved. For each account named in `admins`: an existing one
    must have that password (else AccountError) and is approved if it was not.
    Returns {"created": [...], "approved": [...]}; with dry_run nothing is written."""
    import bcrypt
    from nativeauthenticator.orm import UserInfo
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.orm import sessionmaker

    engine = create_engine(db_url)
    if not dry_run:
        init_db(db_url)
    elif "users_info" not in inspect(engine).get_table_names():
        return {"created": [a["username"] for a in accounts], "approved": []}
    session = sessionmaker(bind=engine)()
    created, approved = [], []
    try:
        for acc in accounts:
            name = acc["username"]
            existing = UserInfo.find(session, name)
            if existing is None:
                hashed = bcrypt.hashpw(acc["password"].encode(), bcrypt.gensalt())
                session.add(UserInfo(username=name, password=hashed, is_authorized=True))
                created.append(name)
                continue
            if name not in admins:
                continue
            if not bcrypt.checkpw(acc["password"].encode(), existing.password):
                raise AccountError(
                    f"The hub account {name!r} (an admin) exists, but its password is not the configured one "
                    "(hub_superuser_password, or the password file in the hub's secrets directory when that is "
                    "empty). Either it was changed at /hub/change-password (then put the new password in "
                    "hub_superuser_password), or someone else made this account: stop the hub, delete the "
                    f"account (sqlite3 DB \"delete from users_info where username='{name}'\") and run again."
                )
            if not existing.is_authorized:
                existing.is_authorized = True
                approved.append(name)
        if not dry_run:
            session.commit()
    finally:
        session.close()
    return {"created": created, "approved": approved}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--accounts", required=True, help="JSON file: the admin accounts [{username, password}]")
    p.add_argument("--class-list", help="pre-approved users: .csv (username,password) or .yml")
    p.add_argument(
        "--pattern", default=names.DEFAULT_PATTERN, help="user-name pattern (hub_username_pattern)"
    )
    p.add_argument(
        "--reserved", default=json.dumps(names.DEFAULT_RESERVED), help="JSON list of reserved names"
    )
    p.add_argument("--dry-run", action="store_true", help="report, change nothing (check mode)")
    args = p.parse_args(argv)
    with open(args.accounts, encoding="utf-8") as f:
        accounts = json.load(f)
    admins = [a["username"] for a in accounts]
    try:
        if args.class_list:
            with open(args.class_list, encoding="utf-8") as f:
                fmt = "csv" if args.class_list.endswith(".csv") else "yaml"
                try:
                    accounts += parse_user_list(
                        f.read(), fmt, args.pattern, json.loads(args.reserved), admins
                    )
                except ValueError as e:
                    raise AccountError(f"hub_preapproved_users_file: {e}") from e
        result = ensure_accounts(args.db, accounts, admins=admins, dry_run=args.dry_run)
    except AccountError as e:
        print(f"ml_workshop.accounts: {e}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
