"""Hub page /hub/connection: the student's SSH port and a VS Code Remote-SSH snippet."""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from tornado import web

from .container import connection_details
from .store import StateStore


class ConnectionHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        spawner = user.spawner
        details = connection_details(user.name, StateStore(spawner.state_file).load(), spawner.ssh_host)
        html = await self.render_template("connection.html", user=user, details=details)
        self.finish(html)
