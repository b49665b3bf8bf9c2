"""What a student reads when their server cannot start: one catalog, keyed by reason.

Pure (no JupyterHub, no Docker). The spawner decides the reason and its parameters;
`explain()` turns them into the words shown on the spawn / spawn-pending pages, and
`safe_log_lines()` picks the lines of a container log that may be shown with them.

Adding a language: add a `Catalog` with the same reason keys and the same {placeholders}
to CATALOGS under its locale name (e.g. "zh_CN"); tests/test_messages.py checks every
catalog against English. A language without a catalog falls back to English.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

# The reasons a start is refused or fails, as the spawner knows them.
NPU_FULL: Final = "npu_full"  # exclusive policy, not enough free NPUs
SSH_PORTS_FULL: Final = "ssh_ports_full"  # hub_ssh_port_range used up
IMAGE_MISSING: Final = "image_missing"  # the environment image is not on this host
BAD_NAME: Final = "bad_name"  # the user name cannot name a container / directory
DOCKER_UNAVAILABLE: Final = "docker_unavailable"  # the Docker daemon does not answer
START_TIMEOUT: Final = "start_timeout"  # no answer from the server in time
EXITED: Final = "exited"  # the container stopped right after it started
START_FAILED: Final = "start_failed"  # anything else; the hub log has the details
PROFILE_UNKNOWN: Final = "profile_unknown"  # the start asked for a profile this hub does not offer
PROFILE_PORTS_FULL: Final = "profile_ports_full"  # a profile port's range (hub_profiles) used up
# Cluster mode (placement.py): where a server runs is chosen among several NPU servers.
NPU_FULL_CLUSTER: Final = "npu_full_cluster"  # exclusive: no server has enough free NPUs
HOME_NODE_FULL: Final = "home_node_full"  # the server holding the student's work has no free NPU
HOME_NODE_UNAVAILABLE: Final = "home_node_unavailable"  # ... is drained, down or gone
NO_NODE: Final = "no_node"  # no server of the cluster takes new servers
IMAGE_MISSING_ON_NODE: Final = "image_missing_on_node"  # the image is not on the chosen server

# Each reason's parameters: exactly the placeholders its text may use.
PARAMS: Final[Mapping[str, tuple[str, ...]]] = {
    NPU_FULL: ("total", "needed", "free"),
    SSH_PORTS_FULL: (),
    IMAGE_MISSING: ("image",),
    BAD_NAME: ("name",),
    DOCKER_UNAVAILABLE: (),
    START_TIMEOUT: ("seconds",),
    EXITED: ("code",),
    START_FAILED: (),
    PROFILE_UNKNOWN: ("profile", "offered"),
    PROFILE_PORTS_FULL: ("port",),
    NPU_FULL_CLUSTER: ("nodes", "total", "needed", "free"),
    HOME_NODE_FULL: ("node", "needed", "free"),
    HOME_NODE_UNAVAILABLE: ("node",),
    NO_NODE: ("nodes",),
    IMAGE_MISSING_ON_NODE: ("image", "node"),
}
REASONS: Final = tuple(PARAMS)
DEFAULT_LANGUAGE: Final = "en"


@dataclass(frozen=True)
class Entry:
    text: str  # what happened, in plain words
    next: str  # what the student can do about it


@dataclass(frozen=True)
class Catalog:
    title: str  # heading of the page that shows the refusal
    retry: str  # label of the button that starts again
    log_heading: str  # introduces the container's last log lines
    reasons: Mapping[str, Entry] = field(default_factory=dict)


EN: Final = Catalog(
    title="Your server could not start",
    retry="Try again",
    log_heading="The last messages of your server:",
    reasons={
        NPU_FULL: Entry(
            "No free NPU on this server: all {total} NPUs are in use by other students' servers "
            "({needed} needed, {free} free).",
            "Please try again later or ask the organisers.",
        ),
        SSH_PORTS_FULL: Entry(
            "This server has no SSH port left for another student's server.",
            "Please tell the organisers; your account and your files are fine.",
        ),
        IMAGE_MISSING: Entry(
            "The environment image {image} is not installed on this server.",
            "Please tell the organisers (they install it); your account and your files are fine.",
        ),
        BAD_NAME: Entry(
            "The user name {name} cannot be used for a server here: a server's name must start "
            "with a lowercase letter or a digit.",
            "Please ask the organisers for an account whose name starts with a letter or a digit.",
        ),
        DOCKER_UNAVAILABLE: Entry(
            "The container service of this server is not answering right now (it may be restarting).",
            "Please try again in a minute; if it keeps happening, tell the organisers.",
        ),
        START_TIMEOUT: Entry(
            "Your server did not answer within {seconds} seconds, so its start was stopped.",
            "The server may be busy: please try again in a minute; if it keeps happening, "
            "tell the organisers.",
        ),
        EXITED: Entry(
            "Your server stopped right after it started (exit code {code}).",
            "Please try again; if it stops again, tell the organisers and show them this message.",
        ),
        START_FAILED: Entry(
            "Your server could not be started because of a problem on this server.",
            "Please try again in a minute; if it keeps happening, tell the organisers "
            "(the hub's log names the cause).",
        ),
        PROFILE_UNKNOWN: Entry(
            "There is no environment {profile} on this server; it offers: {offered}.",
            "Please pick one of those on the start page and try again.",
        ),
        PROFILE_PORTS_FULL: Entry(
            "This server has no {port} port left for another student's server.",
            "Please pick another environment, or tell the organisers; your account and your files are fine.",
        ),
        NPU_FULL_CLUSTER: Entry(
            "No free NPU on any of the {nodes} servers: {free} of {total} NPUs are free, but no server "
            "has the {needed} you need at once.",
            "Please try again later or ask the organisers.",
        ),
        HOME_NODE_FULL: Entry(
            "Your work is on server {node}, which has no free NPU for you right now ({needed} needed, {free} free).",
            "Please try again later, or ask the organisers to move your work to another server.",
        ),
        HOME_NODE_UNAVAILABLE: Entry(
            "Your work is on server {node}, which does not take new servers right now.",
            "Please ask the organisers: they can bring the server back or move your work to another one.",
        ),
        NO_NODE: Entry(
            "None of the {nodes} servers of the workshop takes new servers right now.",
            "Please try again in a few minutes; if it keeps happening, tell the organisers.",
        ),
        IMAGE_MISSING_ON_NODE: Entry(
            "The environment image {image} is not installed on server {node}.",
            "Please tell the organisers (they install it); your account and your files are fine.",
        ),
    },
)

ZH_CN: Final = Catalog(
    title="你的服务器未能启动",
    retry="重试",
    log_heading="你的服务器最后输出的信息：",
    reasons={
        NPU_FULL: Entry(
            "本服务器没有空闲的 NPU：全部 {total} 个 NPU 都在被其他同学的服务器使用（需要 {needed} 个，空闲 {free} 个）。",
            "请稍后再试，或联系组织者。",
        ),
        SSH_PORTS_FULL: Entry(
            "本服务器已没有可分配给新服务器的 SSH 端口。",
            "请告诉组织者；你的账号和文件都没有问题。",
        ),
        IMAGE_MISSING: Entry(
            "本服务器上没有安装环境镜像 {image}。",
            "请告诉组织者（由他们安装）；你的账号和文件都没有问题。",
        ),
        BAD_NAME: Entry(
            "用户名 {name} 不能用于这里的服务器：服务器名称必须以小写字母或数字开头。",
            "请联系组织者，换一个以字母或数字开头的账号。",
        ),
        DOCKER_UNAVAILABLE: Entry(
            "本服务器的容器服务暂时没有响应（可能正在重启）。",
            "请一分钟后再试；如果一直这样，请告诉组织者。",
        ),
        START_TIMEOUT: Entry(
            "你的服务器在 {seconds} 秒内没有响应，因此已停止启动。",
            "服务器可能正忙：请一分钟后再试；如果一直这样，请告诉组织者。",
        ),
        EXITED: Entry(
            "你的服务器启动后立即停止了（退出码 {code}）。",
            "请再试一次；如果再次停止，请告诉组织者并把这条信息给他们看。",
        ),
        START_FAILED: Entry(
            "由于本服务器上的问题，你的服务器未能启动。",
            "请一分钟后再试；如果一直这样，请告诉组织者（hub 的日志里有原因）。",
        ),
        PROFILE_UNKNOWN: Entry(
            "本服务器没有名为 {profile} 的环境；可选的有：{offered}。",
            "请在启动页选择其中一个，然后重试。",
        ),
        PROFILE_PORTS_FULL: Entry(
            "本服务器已没有可分配给新服务器的 {port} 端口。",
            "请选择其他环境，或告诉组织者；你的账号和文件都没有问题。",
        ),
        NPU_FULL_CLUSTER: Entry(
            "全部 {nodes} 台服务器都没有足够的空闲 NPU：{total} 个 NPU 中有 {free} 个空闲，但没有一台服务器能同时提供你需要的 {needed} 个。",
            "请稍后再试，或联系组织者。",
        ),
        HOME_NODE_FULL: Entry(
            "你的作业文件在服务器 {node} 上，该服务器现在没有可分配给你的空闲 NPU（需要 {needed} 个，空闲 {free} 个）。",
            "请稍后再试，或请组织者把你的作业迁移到另一台服务器。",
        ),
        HOME_NODE_UNAVAILABLE: Entry(
            "你的作业文件在服务器 {node} 上，该服务器现在不接受新的服务器。",
            "请联系组织者：他们可以恢复该服务器，或把你的作业迁移到另一台服务器。",
        ),
        NO_NODE: Entry(
            "本次工作坊的 {nodes} 台服务器现在都不接受新的服务器。",
            "请几分钟后再试；如果一直这样，请告诉组织者。",
        ),
        IMAGE_MISSING_ON_NODE: Entry(
            "服务器 {node} 上没有安装环境镜像 {image}。",
            "请告诉组织者（由他们安装）；你的账号和文件都没有问题。",
        ),
    },
)

CATALOGS: Final[Mapping[str, Catalog]] = {"en": EN, "zh_CN": ZH_CN}


def catalog(language: str = DEFAULT_LANGUAGE) -> Catalog:
    """The catalog for `language` ("zh_CN", "zh-CN", "zh" ...), else English."""
    lang = language.replace("-", "_")
    for key in (lang, lang.split("_", 1)[0]):
        if key in CATALOGS:
            return CATALOGS[key]
    return CATALOGS[DEFAULT_LANGUAGE]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@dataclass(frozen=True)
class Explanation:
    """A refusal in words: `plain` for the API and the log, `html()` for the pages."""

    reason: str
    title: str
    text: str
    next: str
    retry: str
    log_heading: str
    log: tuple[str, ...] = ()

    @property
    def plain(self) -> str:
        out = f"{self.text} {self.next}"
        if self.log:
            out += f" {self.log_heading} " + " | ".join(self.log)
        return out

    def html(self) -> str:
        parts = [
            f'<div class="mlw-refusal" data-reason="{html.escape(self.reason)}">',
            f'<p class="mlw-refusal-text">{html.escape(self.text)}</p>',
            f'<p class="mlw-refusal-next">{html.escape(self.next)}</p>',
        ]
        if self.log:
            parts.append(f'<p class="mlw-refusal-log-heading">{html.escape(self.log_heading)}</p>')
            parts.append('<pre class="mlw-refusal-log">' + html.escape("\n".join(self.log)) + "</pre>")
        parts.append("</div>")
        return "".join(parts)


def explain(
    reason: str, language: str = DEFAULT_LANGUAGE, log: Iterable[str] = (), **params: object
) -> Explanation:
    """The words for `reason` with its parameters (see PARAMS). An unknown reason is
    explained as START_FAILED; a missing parameter raises KeyError."""
    cat = catalog(language)
    if reason not in cat.reasons:
        reason = START_FAILED
    entry = cat.reasons[reason]
    values = {k: str(v) for k, v in params.items()}
    return Explanation(
        reason=reason,
        title=cat.title,
        text=entry.text.format_map(values),
        next=entry.next.format_map(values),
        retry=cat.retry,
        log_heading=cat.log_heading,
        log=tuple(log),
    )


# --- container logs: only what is safe to show --------------------------------------------

HIDDEN: Final = "[hidden]"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Internal paths: the hub's configuration and secrets, Docker's and the hub's state.
_PATH = re.compile(r"(?:/var/lib|/etc/jupyterhub)(?:/[^\s'\"`,;)\]}>]*)?")
# NAME=value / NAME: value where NAME says token, secret, key, password, cookie.
_SECRET_ASSIGN = re.compile(
    r"(?i)\b([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|COOKIE)[A-Z0-9_]*)(\s*[=:]\s*)\S+"
)
_TOKEN_WORD = re.compile(r"(?i)\b(token|bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_URL_SECRET = re.compile(r"(?i)([?&](?:token|_xsrf|access_token|code|state)=)[^&\s]+")
_HEX = re.compile(r"\b[0-9a-fA-F]{32,}\b")
# IPv4 addresses of the site's machines and networks (not the loopback or "any" address)
_IPV4 = re.compile(r"\b(?!127\.0\.0\.1\b|0\.0\.0\.0\b)(?:\d{1,3}\.){3}\d{1,3}\b")
_LONG_OPAQUE = re.compile(r"\b[A-Za-z0-9_-]{40,}\b")
# Lines never shown: passwords (the student image prints root's first password) and keys.
_DROP = re.compile(r"(?i)passw|private key")
_TRACE_START = re.compile(r"^\s*Traceback \(most recent call last\):|^goroutine \d+ \[|^panic: ")
_FRAME = re.compile(r'^\s+File "|^\s+at [\w.$<>]+\(|^\s*\.\.\. \d+ more')
# Banners and separators: nothing but punctuation after an optional "[tag]" prefix.
_DECORATION = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?[^A-Za-z0-9]*$")
_CHAIN = re.compile(r"^(During handling of the above exception|The above exception was the direct cause)")


def redact(line: str) -> str:
    line = _PATH.sub(HIDDEN, line)
    line = _SECRET_ASSIGN.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", line)
    line = _TOKEN_WORD.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", line)
    line = _URL_SECRET.sub(lambda m: f"{m.group(1)}{HIDDEN}", line)
    line = _HEX.sub(HIDDEN, line)
    line = _IPV4.sub(HIDDEN, line)
    return _LONG_OPAQUE.sub(HIDDEN, line)


def safe_log_lines(lines: Iterable[str], limit: int = 8, width: int = 160) -> list[str]:
    """The last `limit` lines of a container log that are safe to show a student.

    Stack traces are left out (their frames name files and code; the exception line after
    them stays), as are lines about passwords or private keys and separator lines; paths under
    /var/lib and /etc/jupyterhub, tokens (JUPYTERHUB_API_TOKEN=..., `token ...`, ?token=...),
    hex strings of 32 characters or more, other long opaque strings and IPv4 addresses (other
    than 127.0.0.1 and 0.0.0.0) are replaced by "[hidden]".
    Terminal escapes and control characters are removed, long lines shortened.
    """
    out: list[str] = []
    in_trace = False
    for raw in lines:
        for part in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            line = _CONTROL.sub("", _ANSI.sub("", part)).rstrip()
            if _TRACE_START.match(line):
                in_trace = True
                continue
            if in_trace:
                # frames and their source lines are indented; the exception line is not
                if not line.strip() or line[:1].isspace():
                    continue
                in_trace = False
            if _DECORATION.match(line) or _FRAME.match(line) or _CHAIN.match(line) or _DROP.search(line):
                continue
            line = redact(line)
            if len(line) > width:
                line = line[: width - 1] + "…"
            out.append(line)
    return out[-limit:] if limit > 0 else []
