"""The exception a student's start ends with when it is refused or fails, and the mapping of
Docker errors to reasons (messages.py has the words).

JupyterHub shows an exception raised from Spawner.start through its `jupyterhub_message` /
`jupyterhub_html_message` attributes: on the error page of /hub/spawn (a refusal within the
first second), in the `failed` event of /hub/api/users/NAME/server/progress (the spawn-pending
page) and on /hub/spawn-pending/NAME afterwards (not_running.html). The REST API answers with
the HTTP status and `log_message`. Our templates (roles/hub/templates/pages/) read `mlw_reason`,
`mlw_words` (title, retry label) and `mlw_retry_url` to show a heading and a button that starts
again.
"""

from __future__ import annotations

from collections.abc import Iterable

import requests
from docker import errors as docker_errors
from tornado import web

from . import messages

STATUS: dict[str, int] = {
    messages.NPU_FULL: 409,
    messages.SSH_PORTS_FULL: 409,
    messages.IMAGE_MISSING: 503,
    messages.BAD_NAME: 400,
    messages.DOCKER_UNAVAILABLE: 503,
    messages.START_TIMEOUT: 504,
    messages.EXITED: 500,
    messages.START_FAILED: 500,
    messages.PROFILE_UNKNOWN: 400,
    messages.PROFILE_PORTS_FULL: 409,
    messages.NPU_FULL_CLUSTER: 409,
    messages.HOME_NODE_FULL: 409,
    messages.HOME_NODE_UNAVAILABLE: 503,
    messages.NO_NODE: 503,
    messages.IMAGE_MISSING_ON_NODE: 503,
}


class StartRefused(web.HTTPError):
    """A start that cannot go on, with the student's words attached.

    `detail` is for the admin only (it goes to the hub log, never to the student)."""

    def __init__(
        self,
        reason: str,
        *,
        language: str = messages.DEFAULT_LANGUAGE,
        log: Iterable[str] = (),
        retry_url: str = "",
        detail: str = "",
        **params: object,
    ) -> None:
        words = messages.explain(reason, language, log=log, **params)
        super().__init__(STATUS.get(words.reason, 500), words.plain)  # tornado escapes any %
        self.mlw_reason = words.reason
        self.mlw_words = words
        self.mlw_retry_url = retry_url
        self.mlw_detail = detail
        self.jupyterhub_message = words.plain
        self.jupyterhub_html_message = words.html()

    def __str__(self) -> str:
        return f"{self.mlw_reason}: {self.jupyterhub_message}"


def is_image_missing(exc: BaseException) -> bool:
    """docker's 404 for a missing image: ImageNotFound from inspect_image, or the
    "No such image" APIError of create_container."""
    if isinstance(exc, docker_errors.ImageNotFound):
        return True
    if isinstance(exc, docker_errors.APIError) and exc.status_code == 404:
        return "no such image" in str(exc.explanation or exc).lower()
    return False


def is_docker_unavailable(exc: BaseException) -> bool:
    """The daemon does not answer: no connection, or the client could not even ask its version."""
    if isinstance(exc, docker_errors.APIError):
        return False
    return isinstance(exc, requests.exceptions.ConnectionError | docker_errors.DockerException)


def reason_of_docker_error(exc: BaseException) -> str:
    if is_image_missing(exc):
        return messages.IMAGE_MISSING
    if is_docker_unavailable(exc):
        return messages.DOCKER_UNAVAILABLE
    return messages.START_FAILED
