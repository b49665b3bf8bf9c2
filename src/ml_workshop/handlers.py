"""Hub pages: /hub/connection (the student's SSH port and a VS Code Remote-SSH snippet),
/hub/my-work.tar.gz (the student's own work as an archive), /hub/npus (the organisers' NPU
page) and, when
the hub has a workshop CA (hub_tls), /hub/workshop-ca (how to trust it) and /hub/workshop-ca.crt
(the certificate), both without login: a student needs them before trusting the login page."""

from __future__ import annotations

import asyncio
import os
import time

from jupyterhub.handlers import BaseHandler
from tornado import web

from . import npuwatch, tls
from .container import connection_details, work_dir
from .profiles import all_ports
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
        port_labels = {
            name: (spec.label, spec.scheme) for name, spec in all_ports(spawner.profile_list()).items()
        }
        # cluster mode: the node the student's server runs (or last ran) on, not the hub's host
        ssh_host = getattr(spawner, "node_addr", "") or spawner.ssh_host
        details = connection_details(
            user.name, StateStore(spawner.state_file).load(), ssh_host, port_labels=port_labels
        )
        ca = workshop_ca(self.ca_file)
        html = await self.render_template(
            "connection.html", user=user, details=details, ca_fingerprint=ca[1] if ca else ""
        )
        self.finish(html)


def work_archive_argv(work_root: str, escaped_name: str) -> list[str]:
    """tar of one student's work directory to stdout, gzip'd: the directory named by the logged-in
    user alone (container.work_dir refuses a name that could reach elsewhere); symbolic links are
    stored as links, never followed (tar's default), so a link to another student's files or to
    the hub's secrets brings nothing of theirs."""
    name = os.path.basename(work_dir(work_root, escaped_name))
    return ["tar", "--create", "--gzip", f"--directory={work_root}", "--", name]


class WorkArchiveHandler(BaseHandler):
    """/hub/my-work.tar.gz: the logged-in user's own work directory, streamed as a tar.gz. No
    parameter names the user: nobody can ask for another's work."""

    chunk_size = 256 * 1024

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        spawner = user.spawner
        try:
            argv = work_archive_argv(spawner.work_root, user.escaped_name)
        except ValueError as e:
            raise web.HTTPError(404, "no work directory for this account") from e
        if not os.path.isdir(os.path.join(spawner.work_root, argv[-1])):
            raise web.HTTPError(404, "no work yet: start your server once")
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        assert proc.stdout is not None
        self.set_header("Content-Type", "application/gzip")
        self.set_header("Content-Disposition", f'attachment; filename="{argv[-1]}-work.tar.gz"')
        self.set_header("Cache-Control", "no-store")
        try:
            while chunk := await proc.stdout.read(self.chunk_size):
                self.write(chunk)
                await self.flush()
        finally:
            if proc.returncode is None:
                try:
                    proc.kill()
                except ProcessLookupError:
                    pass
            await proc.wait()
        self.log.info("Work archive of %s sent (tar exit %s)", user.name, proc.returncode)
        self.finish()


class NpuDashboardHandler(BaseHandler):
    """/hub/npus: the organisers' view of this server's NPUs (hub admins only): who holds each NPU
    and since when, its health, AI core use, memory, power and temperature (ml_workshop.npuwatch).
    A fresh look at every load (at most one a second), the same numbers as /hub/metrics."""

    def initialize(self, watch: npuwatch.NpuWatch) -> None:
        self.watch = watch

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        if not user.admin:
            raise web.HTTPError(403, "the NPU page is for the organisers (hub admins)")
        snap = await self.watch.refresh(max_age=1.0)
        self.watch.ensure_started()
        html = await self.render_template(
            "npus.html",
            snap=snap,
            rows=npuwatch.rows(snap),
            taken=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(snap["taken_at"])),
        )
        self.set_header("Cache-Control", "no-store")
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
