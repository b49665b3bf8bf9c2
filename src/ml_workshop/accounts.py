"""Create NativeAuthenticator accounts (the admin `superuser`, a class list) directly in the
hub database, approved. Existing accounts are left alone (passwords and approvals are kept).

Usage (with the hub's virtualenv python):
    python -m ml_workshop.accounts --db sqlite:////var/lib/jupyterhub/jupyterhub.sqlite \
        --accounts /etc/jupyterhub/accounts.json
accounts.json: [{"username": "...", "password": "..."}, ...]. Prints JSON {"created": [...]}.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence


def parse_user_list(text: str, fmt: str) -> list[dict[str, str]]:
    """Parse a pre-approved class list (CSV with a header `username,password` or YAML/JSON list
    of {username, password}) into [{"username", "password"}]. Pure."""
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
        seen.add(name)
        out.append({"username": name, "password": pw})
    return out


def ensure_accounts(db_url: str, accounts: Iterable[dict[str, str]]) -> list[str]:
    import bcrypt
    from nativeauthenticator.orm import UserInfo
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    engine = create_engine(db_url)
    UserInfo.__table__.create(engine, checkfirst=True)
    session = sessionmaker(bind=engine)()
    created = []
    try:
        for acc in accounts:
            name = acc["username"]
            if UserInfo.find(session, name) is not None:
                continue
            hashed = bcrypt.hashpw(acc["password"].encode(), bcrypt.gensalt())
            session.add(UserInfo(username=name, password=hashed, is_authorized=True))
            created.append(name)
        session.commit()
    finally:
        session.close()
    return created


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--accounts", required=True, help="JSON file: [{username, password}]")
    p.add_argument("--class-list", help="pre-approved users: .csv (username,password) or .yml")
    args = p.parse_args(argv)
    with open(args.accounts, encoding="utf-8") as f:
        accounts = json.load(f)
    if args.class_list:
        with open(args.class_list, encoding="utf-8") as f:
            fmt = "csv" if args.class_list.endswith(".csv") else "yaml"
            accounts += parse_user_list(f.read(), fmt)
    created = ensure_accounts(args.db, accounts)
    json.dump({"created": created}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
