"""A client for one NPU server's hub in the converged site, shared by the site's suites: the
REST API with the ml-workshop-api service token through the published port, sign-up and
approval as a browser does them, and a snapshot of what must never be lost."""

import json
import time

import requests
from conftest import base_url, instance

STATE = "/var/lib/jupyterhub/ml-workshop-state.json"
DB = "/var/lib/jupyterhub/jupyterhub.sqlite"
WORK = "/srv/ml-workshop/student-work"


class Hub:
    """One NPU server's hub, seen from the control node (published port) and from inside."""

    def __init__(self, server):
        self.server = server
        self.host = instance(server)
        self.base = base_url(server)

    @property
    def token(self):
        return self.host.file("/etc/jupyterhub/secrets/api_token").content_string.strip()

    def api(self, method, path, timeout=30, **kw):
        return requests.request(
            method,
            f"{self.base}/hub/api{path}",
            timeout=timeout,
            headers={"Authorization": f"token {self.token}"},
            **kw,
        )

    def user_server(self, user, path, method="GET", **kw):
        """A request to the student's own Jupyter server through the proxy (service token)."""
        return requests.request(
            method,
            f"{self.base}/user/{user}{path}",
            timeout=30,
            headers={"Authorization": f"token {self.token}"},
            **kw,
        )

    def wait_api(self, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.api("GET", "/", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(2)
        raise AssertionError(f"{self.server}: the hub API did not answer within {timeout}s")

    def signup(self, user, password):
        """The sign-up form as a browser posts it (XSRF cookie and field); the response."""
        s = requests.Session()
        s.get(f"{self.base}/hub/signup")
        return s.post(
            f"{self.base}/hub/signup",
            data={
                "username": user,
                "signup_password": password,
                "signup_password_confirmation": password,
                "_xsrf": s.cookies.get("_xsrf", ""),
            },
        )

    def login(self, user, password):
        """The login form as a browser posts it; (the cookie session, the response)."""
        s = requests.Session()
        s.get(f"{self.base}/hub/login")
        r = s.post(
            f"{self.base}/hub/login",
            data={"username": user, "password": password, "_xsrf": s.cookies.get("_xsrf", "")},
        )
        return s, r

    def signup_and_approve(self, user, password):
        self.signup(user, password)
        su = self.host.file("/etc/jupyterhub/secrets/superuser_password").content_string.strip()
        a, _ = self.login("superuser", su)
        authorized = self.host.check_output(
            f"sqlite3 {DB} \"select is_authorized from users_info where username='{user}'\""
        )
        if authorized.strip() != "1":
            a.get(f"{self.base}/hub/authorize/{user}")

    def server_state(self, user):
        r = self.api("GET", f"/users/{user}")
        if r.status_code == 404:
            return None
        return r.json().get("servers", {}).get("")

    def start(self, user, timeout=180, options=None):
        """Start `user`'s server (with these user_options, e.g. {"profile": "hcie"}) and wait until ready."""
        if self.api("GET", f"/users/{user}").status_code == 404:
            self.api("POST", f"/users/{user}")
        r = self.api("POST", f"/users/{user}/server", **({"json": options} if options is not None else {}))
        assert r.status_code in (201, 202, 400), f"start {user}: {r.status_code} {r.text[:300]}"
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.server_state(user)
            if s and s.get("ready"):
                return
            time.sleep(1)
        raise AssertionError(f"{user}'s server on {self.server} was not ready within {timeout}s")

    def wait_stopped(self, user, timeout=90):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.server_state(user):
                return
            time.sleep(2)
        raise AssertionError(f"the hub still shows {user}'s server running {timeout}s after it was gone")

    def answers(self, user, timeout=60):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = self.user_server(user, "/api/status")
                if last.status_code == 200:
                    return
            except requests.RequestException as e:
                last = e
            time.sleep(2)
        raise AssertionError(f"{user}'s server does not answer through the hub on {self.server}: {last}")

    def snapshot(self):
        """What must never be lost, and what must stay consistent."""
        h = self.host
        accounts = h.check_output(
            f"sqlite3 {DB} 'select username, is_authorized, hex(password) from users_info order by username'"
        )
        state = json.loads(h.check_output(f"cat {STATE}"))
        work = h.check_output(
            f"cd {WORK} && find . -type f \\( -name marker.txt -o -name root.shadow \\) "
            "| sort | xargs -r sha256sum"
        )
        running = {}
        for line in h.check_output(
            "docker ps --filter label=ml-workshop.user --format "
            '\'{{.Label "ml-workshop.user"}} {{.Label "ml-workshop.npus"}}\''
        ).splitlines():
            user, _, npus = line.partition(" ")
            running[user] = npus
        return {
            "accounts": accounts,
            "ssh_ports": state["ssh_ports"],
            "npus": state["npus"],
            "work": work,
            "running": running,
        }
