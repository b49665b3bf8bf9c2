"""The hub page templates of roles/hub/templates/pages/ rendered as JupyterHub 5.5.4 loads them
(our directory first, JupyterHub's under the "templates/" prefix), with a refused start.
Needs jupyterhub (its templates); skipped where it is not installed."""

import pathlib
import re
from types import SimpleNamespace

import pytest

pytest.importorskip("jupyterhub")

from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub.app import JupyterHub
from tornado import web

from ml_workshop import i18n, messages, refusals

PAGES = pathlib.Path(__file__).parent.parent / "roles" / "hub" / "templates" / "pages"


@pytest.fixture(scope="module")
def env():
    base = JupyterHub()._template_paths_default()[0]
    # what the role's template task writes: the .j2 rendered once by Ansible
    ours = {
        f.name.removesuffix(".j2"): Environment().from_string(f.read_text()).render(ansible_managed="managed")
        for f in PAGES.glob("*.html.j2")
    }
    return Environment(
        autoescape=True,
        loader=ChoiceLoader(
            [
                PrefixLoader({"templates": FileSystemLoader([base])}, "/"),
                DictLoader(ours),
                FileSystemLoader([base]),
            ]
        ),
    )


def namespace(language="en"):
    user = SimpleNamespace(
        name="bob", admin=False, escaped_name="bob", spawner=SimpleNamespace(options_form="")
    )
    return {
        "mlw_t": i18n.page_text(language),
        "mlw_lang": language,
        "mlw_html_lang": i18n.HTML_LANG[language],
        "base_url": "/hub/",
        "prefix": "/",
        "user": user,
        "static_url": lambda p, **_: "/static/" + p,
        "login_url": "/hub/login",
        "logout_url": "/hub/logout",
        "version_hash": "x",
        "services": [],
        "parsed_scopes": {},
        "expanded_scopes": set(),
        "xsrf": "x",
    }


def text(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def refusal():
    return refusals.StartRefused(messages.NPU_FULL, retry_url="/hub/spawn/bob", total=4, needed=1, free=0)


def test_error_page_of_a_refused_start_shows_the_words_and_try_again(env):
    e = refusal()
    html = env.get_template("error.html").render(
        status_code=409,
        status_message="Conflict",
        message=e.jupyterhub_message,
        message_html=e.jupyterhub_html_message,
        exception=e,
        extra_error_html="",
        **namespace(),
    )
    assert "Your server could not start" in html
    assert "No free NPU on this server: all 4 NPUs are in use" in text(html)
    assert "409" not in text(html) and "Conflict" not in text(html)
    assert re.search(r'<a id="mlw-retry"[^>]*href="/hub/spawn/bob"[^>]*>Try again</a>', html)


def test_other_errors_keep_jupyterhubs_page(env):
    e = web.HTTPError(404)
    html = env.get_template("error.html").render(
        status_code=404,
        status_message="Not Found",
        message="",
        message_html="",
        exception=e,
        extra_error_html="",
        **namespace(),
    )
    assert "404 : Not Found" in text(html)
    assert "mlw-refusal-title" not in html and "data-reason" not in html


def test_failed_start_page_shows_the_words_the_log_and_try_again(env):
    e = refusals.StartRefused(messages.EXITED, code=3, retry_url="/hub/spawn/bob", log=["boom <b>"])
    html = env.get_template("not_running.html").render(
        failed=True,
        exception=e,
        failed_message=e.jupyterhub_message,
        failed_html_message=e.jupyterhub_html_message,
        spawn_url="/hub/spawn/bob",
        server_name="",
        **namespace(),
    )
    assert "Your server stopped right after it started (exit code 3)." in text(html)
    assert "boom &lt;b&gt;" in html
    assert "Spawn failed" not in html
    assert re.search(r'<a id="start"[^>]*href="/hub/spawn/bob">Try again</a>', html)


def test_not_running_without_a_failure_is_jupyterhubs(env):
    html = env.get_template("not_running.html").render(
        failed=False, spawn_url="/hub/spawn/bob", server_name="", **namespace()
    )
    assert "Server not running" in text(html) and "mlw-refusal-title" not in html


def test_spawn_pending_reloads_into_the_failure_page(env):
    html = env.get_template("spawn_pending.html").render(
        spawner=SimpleNamespace(name=""), progress_url="/hub/api/users/bob/server/progress", **namespace()
    )
    assert "EventSource" in html  # JupyterHub's progress script is kept
    assert "bg-danger" in html and "location.reload" in html


FP = ":".join(["AB"] * 32)


def test_workshop_ca_page_offers_the_download_and_the_fingerprint(env):
    ns = namespace() | {"user": None}
    html = env.get_template("workshop-ca.html").render(ca_fingerprint=FP, workshop_ca_url="workshop-ca", **ns)
    assert "Trust the workshop certificate" in html
    assert re.search(r'<a [^>]*id="mlw-ca-download" href="/hub/workshop-ca.crt"', html)
    assert f'<code id="mlw-ca-fingerprint">{FP}</code>' in html
    assert all(w in text(html) for w in ("Windows", "macOS", "Chrome", "Firefox"))
    assert 'id="mlw-trust-link"' in html  # the banner's link, for visitors not logged in


def test_login_banner_links_to_the_ca_page_only_with_a_ca(env):
    ns = namespace() | {"user": None}
    with_ca = env.get_template("page.html").render(workshop_ca_url="workshop-ca", **ns)
    assert re.search(r'id="mlw-trust-link"\s+href="/hub/workshop-ca"', with_ca)
    assert (
        "mlw-trust-link"
        not in env.get_template("page.html").render(workshop_ca_url="", **ns).split("</style>")[1]
    )


def test_connection_page_has_the_trust_section_with_a_ca(env):
    html = env.get_template("connection.html").render(details=None, ca_fingerprint=FP, **namespace())
    assert 'id="mlw-trust"' in html and FP in html
    html = env.get_template("connection.html").render(details=None, ca_fingerprint="", **namespace())
    assert 'id="mlw-trust"' not in html


def test_start_page_with_profiles_asks_for_the_environment_and_shows_a_refusal(env):
    from ml_workshop import profiles

    offered = profiles.parse(
        [
            {"slug": "ml-workshop", "display_name": "ML Workshop", "image": "u:latest"},
            {"slug": "hcie", "display_name": "HCIE Lab", "image": "h:latest"},
        ]
    )
    e = refusals.StartRefused(messages.PROFILE_UNKNOWN, profile="x", offered="ML Workshop, HCIE Lab")
    html = env.get_template("spawn.html").render(
        spawner_options_form=profiles.options_form(offered, ["u:latest"]),
        error_html_message=e.jupyterhub_html_message,
        url="/hub/spawn",
        for_user=None,
        **namespace(),
    )
    assert "Choose your environment" in html and "Server Options" not in html
    assert 'value="ml-workshop" checked' in html and 'value="hcie" disabled' in html
    assert "There is no environment x on this server" in text(html)


@pytest.mark.parametrize(
    ("language", "words"),
    [
        (
            "en",
            [
                "Sign In",
                "Username:",
                "Password:",
                "Sign up",
                "Start My Server",
                "Connect with SSH or VS Code",
            ],
        ),
        ("zh_CN", ["登录", "用户名：", "密码：", "注册", "启动我的服务器", "通过 SSH 或 VS Code 连接"]),
    ],
)
def test_student_pages_speak_hub_language(env, language, words):
    """Login, home and connection pages in hub_language, with the ids the handlers and tests use."""
    ns = namespace(language)
    login = env.get_template("native-login.html").render(
        next="",
        login_error="",
        username="",
        enable_signup=True,
        two_factor_auth=False,
        **ns,
    )
    for fid in ('id="username_input"', 'id="password_input"', 'id="login_submit"', 'name="_xsrf"'):
        assert fid in login
    home = env.get_template("home.html").render(
        url="/hub/spawn", default_server=SimpleNamespace(active=False), allow_named_servers=False, **ns
    )
    assert 'id="start"' in home
    details = {
        "port": 22222,
        "user": "root",
        "host": "<h>",
        "npus": [1],
        "ports": [],
        "command": "ssh",
        "vscode": "Host",
    }
    conn = env.get_template("connection.html").render(details=details, ca_fingerprint="", **ns)
    assert "&lt;h&gt;" in conn and "<h>" not in conn  # the host name is escaped in every language
    pages = text(login + home + conn)
    for w in words:
        assert w in pages, (language, w)
    other = "登录" if language == "en" else "Sign In"
    assert other not in pages
