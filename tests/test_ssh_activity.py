"""mlw-ssh-activity (student image): which processes count as SSH sessions, the activity
request it sends, and that it does nothing outside a hub and never logs the token."""

import http.server
import json
import pathlib
import threading

import pytest
from scriptload import load_script

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "roles/images/files/user/mlw-ssh-activity"


def _load():
    return load_script(SCRIPT, "mlw_ssh_activity")


act = _load()


def _proc(tmp_path, titles):
    for pid, title in enumerate(titles, start=1):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(title.encode() + b"\0")
    (tmp_path / "self").mkdir()
    return str(tmp_path)


def test_only_logged_in_sessions_count(tmp_path):
    proc = _proc(
        tmp_path,
        [
            "sshd: /usr/sbin/sshd [listener] 1 of 10-60 startups",
            "sshd: [accepted]",
            "sshd: root [priv]",
            "sshd: root [net]",
            "sshd: unknown [preauth]",
            "/usr/sbin/sshd",
            "python3 /usr/local/bin/mlw-ssh-activity",
            "sshd: root@pts/0",  # a terminal
            "sshd: root@notty",  # a command, sftp, VS Code Remote-SSH
            "sshd: root",  # logged in, no session channel (ssh -N)
        ],
    )
    assert act.ssh_sessions(proc) == 3


def test_no_session(tmp_path):
    assert act.ssh_sessions(_proc(tmp_path, ["sshd: /usr/sbin/sshd [listener] 0 of 10-60 startups"])) == 0


@pytest.fixture
def fake_hub():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Authorization"], json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api/", seen
    server.shutdown()


def test_report_posts_jupyterhubs_activity_body(fake_hub):
    url, seen = fake_hub
    assert act.report(url, "alice", "", "tok-123") == 200
    path, auth, body = seen[0]
    assert path == "/hub/api/users/alice/activity" and auth == "token tok-123"
    ts = body["last_activity"]
    assert ts.endswith("Z") and "T" in ts
    assert body == {"last_activity": ts, "servers": {"": {"last_activity": ts}}}


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api", "JUPYTERHUB_USER": "alice"},
        {
            "JUPYTERHUB_API_URL": "http://127.0.0.1:1/hub/api",
            "JUPYTERHUB_USER": "alice",
            "JUPYTERHUB_API_TOKEN": "tok",
            "MLW_SSH_ACTIVITY": "no",
        },
    ],
)
def test_does_nothing_outside_a_hub_or_switched_off(monkeypatch, env):
    for k in ("JUPYTERHUB_API_URL", "JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN", "MLW_SSH_ACTIVITY"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(act.time, "sleep", lambda s: pytest.fail("it should have returned"))
    assert act.main() == 0


def test_failures_are_logged_without_the_token_and_it_keeps_going(monkeypatch, capsys):
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")  # nothing listens
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-token-xyz")
    monkeypatch.setenv("MLW_SSH_ACTIVITY_INTERVAL", "5")
    monkeypatch.setattr(act, "ssh_sessions", lambda: 1)
    rounds = []

    def sleep(seconds):
        assert seconds == 5
        rounds.append(seconds)
        if len(rounds) > 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(act.time, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        act.main()
    err = capsys.readouterr().err
    assert "activity report failed: URLError" in err
    assert err.count("activity report failed") == 1  # logged once, not every round
    assert "secret-token-xyz" not in err
