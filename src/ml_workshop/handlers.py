"""Hub pages: /hub/connection (the student's SSH port and a VS Code Remote-SSH snippet) and, when
the hub has a workshop CA (hub_tls), /hub/workshop-ca (how to trust it) and /hub/workshop-ca.crt
(the certificate), both without login: a student needs them before trusting the login page."""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from tornado import web

from . import tls
from .container import connection_details
from .store import StateStore

CA_CONTENT_TYPE = "application/x-x509-ca-cert"


def workshop_ca(ca_file: str) -> tuple[bytes, str] | None:
    """(PEM, SHA-256 fingerprint) of the workshop CA, or None (no CA, or it cannot be read)."""
    if not ca_file:
        return None
    try:
        return tls.read_ca(ca_file)
    except (OSError, ValueError):
        return None


class ConnectionHandler(BaseHandler):
    def initialize(self, ca_file: str = "") -> None:
        self.ca_file = ca_file

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        spawner = user.spawner
        details = connection_details(user.name, StateStore(spawner.state_file).load(), spawner.ssh_host)
        ca = workshop_ca(self.ca_file)
        html = await self.render_template(
            "connection.html", user=user, details=details, ca_fingerprint=ca[1] if ca else ""
        )
        self.finish(html)


class WorkshopCAPageHandler(BaseHandler):
    """/hub/workshop-ca: the fingerprint and the steps to trust the CA (no login)."""

    def initialize(self, ca_file: str) -> None:
        self.ca_file = ca_file

    async def get(self) -> None:
        ca = workshop_ca(self.ca_file)
        if ca is None:
            raise web.HTTPError(404)
        self.finish(await self.render_template("workshop-ca.html", ca_fingerprint=ca[1]))


class WorkshopCAHandler(BaseHandler):
    """/hub/workshop-ca.crt: the workshop CA certificate (PEM), no login."""

    def initialize(self, ca_file: str) -> None:
        self.ca_file = ca_file

    def get(self) -> None:
        ca = workshop_ca(self.ca_file)
        if ca is None:
            raise web.HTTPError(404)
        self.set_header("Content-Type", CA_CONTENT_TYPE)
        self.set_header("Content-Disposition", 'attachment; filename="workshop-ca.crt"')
        self.finish(ca[0])
