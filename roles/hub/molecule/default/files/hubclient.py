#!/usr/bin/env python3
"""End-to-end client for the molecule checks and the benchmark: talks HTTP to the real hub
(through configurable-http-proxy) like a browser or an API client. Prints one JSON object.

  hubclient.py signup USER PASSWORD          sign up at /hub/signup
  hubclient.py login USER PASSWORD           {"ok": bool, "status", "url"} (ok = session cookie works)
  hubclient.py approve ADMIN PW USER [UPW]   admin logs in and approves USER at /hub/authorize
                                             (the page toggles: with UPW, skipped when USER can log in)
  hubclient.py page USER PASSWORD PATH       logged-in GET of a hub page: {"status", "text"}
  hubclient.py download USER PASSWORD PATH FILE  logged-in GET saved to FILE:
                                             {"status", "content_type", "disposition", "bytes"}
  hubclient.py api METHOD PATH [JSON]        REST call with the ml-workshop-api service token
  hubclient.py flood USER PASSWORD MAX       wrong logins in a row until one is refused with 429
                                             (or MAX tries): {"statuses", "seconds"}
"""

import json
import os
import sys
import time

import requests

BASE = os.environ.get("HUB_URL", "http://127.0.0.1:28000")
TOKEN_FILE = os.environ.get("HUB_TOKEN_FILE", "/etc/jupyterhub/secrets/api_token")
# HUB_FORWARDED_FOR: talk to the hub as a proxy would, naming the client (only a trusted peer's
# X-Forwarded-For counts).
FORWARDED_FOR = os.environ.get("HUB_FORWARDED_FOR", "")


def _session():
    s = requests.Session()
    if FORWARDED_FOR:
        s.headers["X-Forwarded-For"] = FORWARDED_FOR
    return s


def _form(session, path, data):
    session.get(BASE + path)  # sets the _xsrf cookie
    data = dict(data, _xsrf=session.cookies.get("_xsrf", ""))
    return session.post(BASE + path, data=data, allow_redirects=True)


def login(user, password):
    s = _session()
    r = _form(s, "/hub/login", {"username": user, "password": password})
    home = s.get(BASE + "/hub/home", allow_redirects=False)
    return s, {
        "ok": home.status_code == 200,
        "status": r.status_code,
        "url": r.url,
        "home_status": home.status_code,
        "login_error": "login_error" in r.text,
    }


def main(argv):
    cmd = argv[0]
    if cmd == "signup":
        s = _session()
        r = _form(
            s,
            "/hub/signup",
            {"username": argv[1], "signup_password": argv[2], "signup_password_confirmation": argv[2]},
        )
        out = {"status": r.status_code, "text": r.text}
    elif cmd == "login":
        out = login(argv[1], argv[2])[1]
    elif cmd == "approve" and len(argv) > 4 and login(argv[3], argv[4])[1]["ok"]:
        out = {"admin_login": None, "status": None, "authorize_page": None, "already": True}
    elif cmd == "approve":
        s, info = login(argv[1], argv[2])
        r = s.get(BASE + "/hub/authorize/" + argv[3], allow_redirects=True)
        page = s.get(BASE + "/hub/authorize")
        out = {"admin_login": info["ok"], "status": r.status_code, "authorize_page": page.status_code}
    elif cmd == "page":
        s, info = login(argv[1], argv[2])
        r = s.get(BASE + argv[3])
        out = {"login": info["ok"], "status": r.status_code, "text": r.text}
    elif cmd == "download":
        s, info = login(argv[1], argv[2])
        r = s.get(BASE + argv[3], allow_redirects=False)
        with open(argv[4], "wb") as f:
            f.write(r.content)
        out = {
            "login": info["ok"],
            "status": r.status_code,
            "content_type": r.headers.get("Content-Type", ""),
            "disposition": r.headers.get("Content-Disposition", ""),
            "bytes": len(r.content),
        }
    elif cmd == "api":
        method, path = argv[1], argv[2]
        body = json.loads(argv[3]) if len(argv) > 3 else None
        token = open(TOKEN_FILE).read().strip()
        t0 = time.monotonic()
        r = requests.request(
            method, BASE + path, json=body, headers={"Authorization": "token " + token}, timeout=300
        )
        try:
            data = r.json()
        except ValueError:
            data = r.text[-2000:]
        out = {"status": r.status_code, "json": data, "seconds": time.monotonic() - t0}
    elif cmd == "flood":
        # One process, back to back: how many tries a client gets does not depend on how fast a
        # test machine starts processes (the bucket refills while a slow loop runs).
        t0, statuses = time.monotonic(), []
        while len(statuses) < int(argv[3]) and 429 not in statuses:
            statuses.append(login(argv[1], argv[2])[1]["status"])
        out = {"statuses": statuses, "seconds": time.monotonic() - t0}
    else:
        raise SystemExit(__doc__)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
