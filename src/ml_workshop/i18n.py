"""The words of the hub's own pages in each language the workshop speaks (hub_language).

Pure. The hub's configuration passes `page_text(language)` to every page template as `mlw_t`
and the language as `mlw_lang`; the refusal words live in `messages` (same language names).
JupyterHub's and NativeAuthenticator's own pages that the workshop shows students (login, home,
start page) are replaced by templates that read these words; pages only organisers see (the
admin and authorization pages) stay in JupyterHub's English.

Adding a language: a dict with the same keys and {placeholders} as EN in PAGES, a `Catalog` in
messages.CATALOGS, and the name in LANGUAGES; tests/test_i18n.py checks all three.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Final

LANGUAGES: Final = ("en", "zh_CN")
DEFAULT: Final = "en"
# <html lang>, JupyterLab's locale (its language pack), per language
HTML_LANG: Final[Mapping[str, str]] = {"en": "en", "zh_CN": "zh-CN"}

EN: Final[Mapping[str, str]] = {
    # banner and navigation (page.html)
    "trust_link": "Certificate warning? Trust the workshop certificate",
    "nav_connection": "SSH / VS Code",
    "nav_change_password": "Change Password",
    "nav_authorize": "Authorize Users",
    "nav_npus": "NPUs",
    # login (native-login.html)
    "login_title": "Sign In",
    "login_username": "Username:",
    "login_password": "Password:",
    "login_submit": "Sign In",
    "login_signup": "No account yet? {link}Sign up{end}; an organiser approves new accounts.",
    "login_insecure": "This hub is served over plain HTTP: passwords cross the network unencrypted.",
    # sign-up (mlw-signup.html)
    "signup_rule": "User name: {rule}. The organisers' names (such as superuser or admin) cannot be used.",
    "signup_wait": "After signing up, wait until an organiser approves your account.",
    # home (home.html)
    "home_start": "Start My Server",
    "home_open": "My Server",
    "home_stop": "Stop My Server",
    # start page (spawn.html, ml_workshop.profiles)
    "spawn_title": "Choose your environment",
    "spawn_hint": "Your work in ~/work is the same in every environment; you can switch at the next start.",
    "spawn_submit": "Start",
    "profile_missing": "not installed on this server",
    # connection page (connection.html)
    "conn_title": "Connect with SSH or VS Code",
    "conn_port": "Your server's SSH port:",
    "conn_port_note": "(the same every time). User {user}, host {host}.",
    "conn_npus": "NPUs reserved for your running server:",
    "conn_profile_port": "(the same every time; it answers while your server runs that environment)",
    "conn_terminal": "Terminal",
    "conn_vscode": "VS Code (Remote-SSH)",
    "conn_vscode_how": "Add this to ~/.ssh/config on your laptop, then in VS Code run "
    "Remote-SSH: Connect to Host… and pick the entry. The password was generated at your "
    "server's first start: in a JupyterLab terminal, run {cmd} (change it with passwd; the change "
    "is kept). Or put your public key into ~/work/.ssh/authorized_keys and log in without a password.",
    "conn_start_first": "Start your server first: the SSH port is assigned on the first start.",
    "conn_start_button": "Start my server",
    "conn_work": "Your work",
    "conn_work_how": "Everything in ~/work as one archive, for your laptop:",
    "conn_work_download": "Download my work (.tar.gz)",
    # workshop CA (mlw-trust.html, workshop-ca.html)
    "trust_title": "Trust the workshop certificate",
    "trust_download": "Download workshop-ca.crt",
    "trust_fingerprint": "SHA-256 fingerprint:",
    "trust_back": "Back to the login page",
}

ZH_CN: Final[Mapping[str, str]] = {
    "trust_link": "浏览器提示证书不安全？信任本次工作坊的证书",
    "nav_connection": "SSH / VS Code",
    "nav_change_password": "修改密码",
    "nav_authorize": "审批用户",
    "nav_npus": "NPU 状态",
    "login_title": "登录",
    "login_username": "用户名：",
    "login_password": "密码：",
    "login_submit": "登录",
    "login_signup": "还没有账号？{link}注册{end}；新账号需组织者审批后才能登录。",
    "login_insecure": "本服务通过未加密的 HTTP 提供：密码以明文在网络上传输。",
    "signup_rule": "用户名：{rule}。组织者使用的名字（如 superuser、admin）不能注册。",
    "signup_wait": "注册后，请等待组织者审批你的账号。",
    "home_start": "启动我的服务器",
    "home_open": "打开我的服务器",
    "home_stop": "停止我的服务器",
    "spawn_title": "选择你的环境",
    "spawn_hint": "每个环境里的 ~/work 都是同一个工作目录；下次启动时可以换环境。",
    "spawn_submit": "启动",
    "profile_missing": "本服务器未安装",
    "conn_title": "通过 SSH 或 VS Code 连接",
    "conn_port": "你的服务器的 SSH 端口：",
    "conn_port_note": "（每次都相同）。用户 {user}，主机 {host}。",
    "conn_npus": "为你运行中的服务器保留的 NPU：",
    "conn_profile_port": "（每次都相同；你的服务器运行该环境时可以访问）",
    "conn_terminal": "终端",
    "conn_vscode": "VS Code（Remote-SSH）",
    "conn_vscode_how": "把下面的内容加入你电脑上的 ~/.ssh/config，然后在 VS Code 中运行 "
    "Remote-SSH: Connect to Host… 并选择该条目。密码在你的服务器第一次启动时生成：在 JupyterLab "
    "终端中运行 {cmd}（可用 passwd 修改，修改会被保留）。也可以把你的公钥放进 "
    "~/work/.ssh/authorized_keys，免密码登录。",
    "conn_start_first": "请先启动你的服务器：SSH 端口在第一次启动时分配。",
    "conn_start_button": "启动我的服务器",
    "conn_work": "你的作业",
    "conn_work_how": "把 ~/work 中的全部内容打包下载到你的电脑：",
    "conn_work_download": "下载我的作业（.tar.gz）",
    "trust_title": "信任本次工作坊的证书",
    "trust_download": "下载 workshop-ca.crt",
    "trust_fingerprint": "SHA-256 指纹：",
    "trust_back": "返回登录页",
}

PAGES: Final[Mapping[str, Mapping[str, str]]] = {"en": EN, "zh_CN": ZH_CN}


def language_problem(language: object) -> str:
    """'' when `language` is one the hub speaks, else the message naming hub_language."""
    if language in LANGUAGES:
        return ""
    return f"hub_language must be one of {', '.join(LANGUAGES)}, not {language!r}"


def page_text(language: str = DEFAULT) -> dict[str, str]:
    """The words of the pages in `language` (English for a key or a language it lacks)."""
    words = dict(EN)
    words.update(PAGES.get(language, {}))
    return words


def placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}
