"""A student who cannot start is told why, in the browser (issue 17), on npu2 (4 EMULATED NPUs,
exclusive, one NPU per server).

Each reason a start can fail for that a test can produce, in a real Chromium, asserting the
words the student sees after pressing Start: no free NPU (the NPUs are filled with other
students' servers started through the REST API), then "Try again" trying again instead of
replaying the old error (the NPUs are free by then and the next reason shows), the environment
image missing, the container exiting at once (with its safe last log lines and nothing
internal), and the start timing out. The hub log names each refusal with the user name. A user
name that cannot name a container is refused in words through the REST API.

npu2's hub speaks Chinese (hub_language: zh_CN in molecule.yml): every word the student reads is
asserted exactly as the zh_CN catalog of ml_workshop.messages has it (its English twin, the
documented wording, is the unit tests'), and the refused start's page, the home page and the
login page are in Chinese.

How the reasons are produced: a temporary jupyterhub_config.d file puts this suite's students
on npu2's roster and, through a pre_spawn_hook, gives each one what makes their start fail
(an image that is not installed, a command that exits, a command that never answers with a
5 s http_timeout). Leaves the site as it found it: that file is removed and the hub restarted;
the servers, containers, accounts, sign-ups, work directories and SSH port reservations of
this suite's users are removed; alice's and bob's servers (test_10) keep running throughout.
"""

import base64
import re
import textwrap
import time

import pytest
import requests
from conftest import (
    ARTIFACTS,
    PASSWORD,
    PREFIX,
    approve,
    base_url,
    login,
    signup,
    superuser_password,
)

from ml_workshop import i18n, messages

testinfra_hosts = [f"ansible://{PREFIX}-npu2"]

SERVER = "npu2"
NPUS = 3  # students' NPUs on npu2: 4 emulated (prepare.yml), NPU 3 held by the HCIE container (molecule.yml)
CONFIG = "/etc/jupyterhub/jupyterhub_config.d/90-test-refusals.py"
STATE = "/var/lib/jupyterhub/ml-workshop-state.json"
DB = "/var/lib/jupyterhub/jupyterhub.sqlite"
WORK = "/srv/ml-workshop/student-work"
HUB_PY = "/opt/jupyterhub/venv/bin/python"
MISSING_IMAGE = "ml-workshop-missing:latest"
# What each student's start gets (set by the pre_spawn_hook in CONFIG).
CASES = {
    "nora": {"image": MISSING_IMAGE},  # NPUs full first, then the image
    "xena": {
        "cmd": [
            "sh",
            "-c",
            textwrap.dedent("""\
        echo 'course setup: reading the notebook list'
        echo 'course setup: the notebook list is empty, giving up'
        echo 'token file: /etc/jupyterhub/secrets/api_token'
        echo "JUPYTERHUB_API_TOKEN=$JUPYTERHUB_API_TOKEN"
        python3 -c 'import json; json.loads("{")'
        exit 3"""),
        ]
    },
    "tess": {"cmd": ["sh", "-c", "exec sleep 600"], "http_timeout": 5},
}
BAD_NAME = "_rf"  # escapes to "-5frf": cannot start a directory name
FILLERS = [f"rffill{i}" for i in range(1, NPUS + 1)]  # names that need no escaping
USERS = [*CASES, *FILLERS, BAD_NAME]
HEX = re.compile(r"[0-9a-fA-F]{32,}")
LANGUAGE = "zh_CN"  # npu2's hub_language (molecule.yml)
CATALOG = messages.catalog(LANGUAGE)
PAGE = i18n.page_text(LANGUAGE)


def words(reason, **params):
    """The sentence and the advice a student reads for `reason`, in npu2's language."""
    e = messages.explain(reason, language=LANGUAGE, **params)
    return e.text, e.next


class Hub:
    """The hub's REST API on the control machine (published port), with the ml-workshop-api token."""

    def __init__(self, host):
        self.base = base_url(SERVER)
        self.headers = {
            "Authorization": "token " + host.file("/etc/jupyterhub/secrets/api_token").content_string.strip()
        }

    def __call__(self, method, path, **kw):
        return requests.request(method, f"{self.base}/hub/api{path}", headers=self.headers, timeout=60, **kw)

    def wait_up(self, timeout=90):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self("GET", "/").status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise AssertionError("the hub did not come back")

    def server(self, user):
        r = self("GET", f"/users/{user}")
        return r.json().get("servers", {}).get("") if r.status_code == 200 else None

    def wait(self, users, ready, timeout=150):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            states = {u: self.server(u) for u in users}
            if all(bool(s and s.get("ready")) == ready and (ready or not s) for s in states.values()):
                return
            time.sleep(1)
        raise AssertionError(f"servers of {users} not {'ready' if ready else 'stopped'}: {states}")


def write_file(host, path, text):
    host.check_output(f"echo {base64.b64encode(text.encode()).decode()} | base64 -d > {path}")


def hub_python(host, code):
    """Run `code` with the hub's Python and our package (as the hub does)."""
    write_file(host, "/tmp/test-refusals.py", code)
    host.check_output(f"{HUB_PY} /tmp/test-refusals.py && rm -f /tmp/test-refusals.py")


def now(host):
    return host.check_output("date '+%Y-%m-%d %H:%M:%S'").strip()


def journal_since(host, since):
    return host.check_output(f"journalctl -u jupyterhub --no-pager -o cat --since '{since}'")


@pytest.fixture(scope="module")
def site(host, browser):
    """npu2 with this suite's students signed up, approved and on the roster; everything undone after."""
    hub = Hub(host)
    since = now(host)
    running_before = running(host)
    hook = textwrap.dedent(f"""\
        # Written by molecule/default/tests/test_20_refusals.py; removed when the suite ends.
        _CASES = {CASES!r}
        c.WorkshopAuthenticator.roster.update(set(_CASES))  # merged into the roster hubconfig set


        def _case(spawner):
            for key, value in _CASES.get(spawner.user.name, {{}}).items():
                setattr(spawner, key, value)


        c.Spawner.pre_spawn_hook = _case
        """)
    write_file(host, CONFIG, hook)
    host.check_output(f"{HUB_PY} -m py_compile {CONFIG}")
    try:
        purge(host, hub)  # what an interrupted earlier run may have left
        su_pw = superuser_password(host)
        base = base_url(SERVER)
        for user in CASES:
            ctx = browser.new_context()
            signup(ctx.new_page(), base, user)
            ctx.close()
            approve(browser, base, su_pw, user)
        yield {"hub": hub, "since": since, "base": base}
    finally:
        host.run(f"rm -f {CONFIG}")
        purge(host, hub)
        assert running(host) == running_before, "the suite must leave the servers as it found them"


def running(host):
    return sorted(
        host.check_output("docker ps --filter label=ml-workshop.user --format '{{.Names}}'").split()
    )


def purge(host, hub):
    """Remove this suite's users and all they left, and restart the hub (it reads CONFIG if present):
    their servers and accounts through the API, then with the hub stopped their sign-ups (users
    who never logged in have no hub account to delete), NPU and SSH port records, containers
    and work dirs."""
    try:
        hub.wait_up()
        for user in USERS:
            hub("DELETE", f"/users/{user}/server")
        for user in USERS:
            for _ in range(60):
                if hub("DELETE", f"/users/{user}").status_code in (204, 404):
                    break
                time.sleep(1)  # still stopping
    finally:
        host.check_output("systemctl stop jupyterhub")
        hub_python(
            host,
            textwrap.dedent(f"""\
            import sqlite3
            from ml_workshop.store import StateStore
            with StateStore({STATE!r}).transaction() as st:
                for user in {USERS!r}:
                    st["npus"].pop(user, None)
                    st["ssh_ports"].pop(user, None)
            db = sqlite3.connect({DB!r})
            with db:
                db.executemany("DELETE FROM users_info WHERE username = ?", [(u,) for u in {USERS!r}])
            db.close()
            """),
        )
        plain = [u for u in USERS if not u.startswith("_")]  # names DockerSpawner does not escape
        # a container that exited at once is kept for the admin's `docker logs` until the next start
        host.run("docker rm -f " + " ".join(f"ml-workshop-user-{u}" for u in plain))
        host.check_output("rm -rf " + " ".join(f"{WORK}/{u}" for u in plain))
        host.check_output("systemctl start jupyterhub")
        hub.wait_up()


def test_login_page_speaks_the_hubs_language(browser):
    """npu2 speaks Chinese: the login page's words are the zh_CN ones, its fields the usual."""
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(f"{base_url(SERVER)}/hub/login")
    assert page.input_value("#login_submit") == PAGE["login_submit"] == "登录"
    assert page.inner_text("label[for=username_input]").strip() == PAGE["login_username"]
    assert page.inner_text("label[for=password_input]").strip() == PAGE["login_password"]
    assert "注册" in page.inner_text("#mlw-signup-link")
    page.screenshot(path=str(ARTIFACTS / f"{SERVER}-login-zh.png"), full_page=True)
    ctx.close()


def student_page(browser, user):
    ctx = browser.new_context()
    page = ctx.new_page()
    login(page, base_url(SERVER), user, PASSWORD)
    return ctx, page


def press_start(page, base):
    page.goto(f"{base}/hub/home")
    assert page.inner_text("#start").strip() == PAGE["home_start"], "the home page is not in npu2's language"
    page.click("#start")


def refusal(page, shot, timeout=60_000):
    """The words on the page the student sees once the start has failed."""
    page.wait_for_selector("#mlw-refusal-title", timeout=timeout)
    page.screenshot(path=str(ARTIFACTS / f"{SERVER}-refusal-{shot}.png"), full_page=True)
    assert page.inner_text("#mlw-refusal-title") == CATALOG.title
    return re.sub(r"\s+", " ", page.inner_text("#mlw-refusal-box"))


def test_no_free_npu(site, host, browser):
    hub = site["hub"]
    busy = len(host.check_output("docker ps -q --filter label=ml-workshop.user").split())
    fillers = FILLERS[: NPUS - busy]
    for user in fillers:
        assert hub("POST", f"/users/{user}").status_code in (201, 409)
        assert hub("POST", f"/users/{user}/server").status_code in (201, 202)
    hub.wait(fillers, ready=True)

    ctx, page = student_page(browser, "nora")
    press_start(page, site["base"])
    text = refusal(page, "1-npu-full")
    said, advice = words(messages.NPU_FULL, total=NPUS, needed=1, free=0)
    assert f"{said} {advice}" in text
    site["nora"] = (ctx, page)


def test_try_again_tries_again_and_says_the_image_is_missing(site, host):
    hub = site["hub"]
    for user in FILLERS:
        hub("DELETE", f"/users/{user}/server")
    hub.wait(FILLERS, ready=False)
    ctx, page = site.pop("nora")
    with page.expect_navigation():
        page.get_by_role("button", name=CATALOG.retry).click()
    text = refusal(page, "2-image-missing")
    assert words(messages.NPU_FULL, total=NPUS, needed=1, free=0)[0] not in text, (
        "Try again replayed the old error"
    )
    said, advice = words(messages.IMAGE_MISSING, image=MISSING_IMAGE)
    assert f"{said} {advice}" in text
    assert not re.search(r"(?i)docker|404|No such image", text)
    ctx.close()


def test_container_exiting_at_once_shows_its_safe_last_lines(site, browser):
    ctx, page = student_page(browser, "xena")
    press_start(page, site["base"])
    text = refusal(page, "3-exited")
    assert words(messages.EXITED, code=3)[0] in text and CATALOG.log_heading in text
    assert "course setup: the notebook list is empty, giving up" in text
    assert "JSONDecodeError" in text
    assert "JUPYTERHUB_API_TOKEN=[hidden]" in text
    for internal in ("/etc/jupyterhub", "/var/lib", "Traceback", 'File "', "password"):
        assert internal not in text, internal
    assert not HEX.search(page.inner_text("body")), "a token-like hex string reached the page"
    ctx.close()


def test_start_timing_out(site, browser):
    ctx, page = student_page(browser, "tess")
    press_start(page, site["base"])
    text = refusal(page, "4-timeout")
    said, advice = words(messages.START_TIMEOUT, seconds=5)
    assert f"{said} {advice}" in text
    ctx.close()


def test_pressing_start_again_from_home_tries_again(site, browser, host):
    """After a failure, Start on the home page starts again (a new refusal is logged)."""
    time.sleep(1)  # the earlier refusal of tess is in an earlier second
    since = now(host)
    ctx, page = student_page(browser, "tess")
    press_start(page, site["base"])
    assert words(messages.START_TIMEOUT, seconds=5)[0] in refusal(page, "5-timeout-again")
    ctx.close()
    assert "Start of tess's server refused [start_timeout]" in journal_since(host, since)


def test_unusable_name_is_refused_in_words(site):
    hub = site["hub"]
    assert hub("POST", f"/users/{BAD_NAME}").status_code in (201, 409)
    r = hub("POST", f"/users/{BAD_NAME}/server")
    assert r.status_code == 400
    assert r.json()["message"].startswith(words(messages.BAD_NAME, name=BAD_NAME)[0])


def test_admin_reads_each_reason_with_the_user_in_the_hub_log(site, host):
    log = journal_since(host, site["since"])
    for user, reason in [
        ("nora", "npu_full"),
        ("nora", "image_missing"),
        ("xena", "exited"),
        ("tess", "start_timeout"),
        (BAD_NAME, "bad_name"),
    ]:
        assert f"Start of {user}'s server refused [{reason}]" in log, (user, reason)
