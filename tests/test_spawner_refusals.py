"""Why a start fails, as the student and the admin are told (spawner + refusals + messages),
without Docker: DockerSpawner.start and the Docker API calls are replaced by fakes.
Needs jupyterhub + dockerspawner (the hub venv); skipped where they are not installed."""

import asyncio
import logging
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("dockerspawner")

import requests
from docker import errors as docker_errors
from dockerspawner import DockerSpawner

from ml_workshop import container, messages, refusals
from ml_workshop.spawner import WorkshopSpawner

TOKEN = "f" * 40


class FakeDocker:
    def __init__(self, running=(), state=None, log=b""):
        self.running = list(running)
        self.state = state if state is not None else {"Running": True}
        self.log = log
        self.calls = []

    async def __call__(self, method, *args, **kwargs):
        self.calls.append(method)
        if method == "containers":
            return [{"Labels": {container.LABEL_USER: u}} for u in self.running]
        if method == "inspect_container":
            if self.state == "gone":
                raise docker_errors.NotFound("No such container", response=_response(404))
            return {"State": self.state}
        if method == "logs":
            if self.state == "gone":
                raise docker_errors.NotFound("No such container", response=_response(404))
            return self.log
        if method == "inspect_image":  # WorkshopSpawner._use_docker_init: the image runs tini
            return {"Config": {"Entrypoint": ["/usr/bin/tini", "-g", "--", "mlw-user-start"]}}
        raise AssertionError(method)


def _response(code):
    r = requests.Response()
    r.status_code = code
    return r


def make(tmp_path, name="bob", docker=None, escaped=None, **kw):
    user = SimpleNamespace(name=name, url=f"/user/{name}/", id=1, escaped_name=escaped or name)
    kw.setdefault("npu_policy", "exclusive")
    kw.setdefault("npu_ids", [0, 1])
    sp = WorkshopSpawner(
        user=user,
        npu_access={},
        state_file=str(tmp_path / "state.json"),
        work_root=str(tmp_path / "work"),
        **kw,
    )
    sp.docker = docker or FakeDocker()
    sp.log = logging.getLogger("test-spawner")
    sp._ensure_work_dir = lambda: None
    return sp


@pytest.fixture
def docker_start(monkeypatch):
    """Replace DockerSpawner.start; returns a setter for what it does."""
    box = {"do": lambda sp: ("10.0.0.5", 8888)}

    async def fake_start(self):
        self.object_id = "c0ffee"
        return box["do"](self)

    monkeypatch.setattr(DockerSpawner, "start", fake_start)
    return box


def answers(monkeypatch, value):
    async def fake(self, url):
        fake.urls.append(url)
        return value

    fake.urls = []
    monkeypatch.setattr(WorkshopSpawner, "_answers", fake)
    return fake


def refused(sp):
    with pytest.raises(refusals.StartRefused) as info:
        asyncio.run(sp.start())
    return info.value


def test_refusal_carries_the_words_for_every_page_and_the_api():
    e = refusals.StartRefused(messages.NPU_FULL, retry_url="/hub/spawn/bob", total=4, needed=1, free=0)
    assert e.status_code == 409
    assert e.jupyterhub_message.startswith("No free NPU on this server")
    assert 'data-reason="npu_full"' in e.jupyterhub_html_message
    assert e.log_message % e.args == e.jupyterhub_message  # what the REST API answers
    assert (e.mlw_reason, e.mlw_words.title, e.mlw_words.retry, e.mlw_retry_url) == (
        "npu_full",
        "Your server could not start",
        "Try again",
        "/hub/spawn/bob",
    )
    pct = refusals.StartRefused(messages.EXITED, code=1, log=["100% done"])
    assert pct.log_message % pct.args == pct.jupyterhub_message
    assert "100% done" in str(pct)


def test_docker_errors_are_sorted_into_reasons():
    assert refusals.reason_of_docker_error(docker_errors.ImageNotFound("x")) == messages.IMAGE_MISSING
    no_image = docker_errors.APIError(
        "404 Client Error", response=_response(404), explanation="No such image: course:1"
    )
    assert refusals.reason_of_docker_error(no_image) == messages.IMAGE_MISSING
    other_404 = docker_errors.APIError("404", response=_response(404), explanation="No such container")
    assert refusals.reason_of_docker_error(other_404) == messages.START_FAILED
    assert (
        refusals.reason_of_docker_error(requests.exceptions.ConnectionError("x"))
        == messages.DOCKER_UNAVAILABLE
    )
    assert (
        refusals.reason_of_docker_error(
            docker_errors.DockerException("Error while fetching server API version")
        )
        == messages.DOCKER_UNAVAILABLE
    )
    assert refusals.reason_of_docker_error(OSError("disk full")) == messages.START_FAILED


def test_a_name_that_cannot_name_a_container_is_refused_in_words(tmp_path, caplog):
    sp = make(tmp_path, "_bob", escaped="-5fbob")
    with caplog.at_level(logging.WARNING, "test-spawner"):
        e = refused(sp)
    assert (e.status_code, e.mlw_reason) == (400, messages.BAD_NAME)
    assert "The user name _bob cannot be used" in e.jupyterhub_message
    assert sp.store.load()["npus"] == {}
    assert "_bob" in caplog.text and "[bad_name]" in caplog.text


def test_no_free_npu_is_refused_with_the_documented_message_and_logged(tmp_path, caplog):
    make(tmp_path, "alice", npu_ids=[0]).store._write({"npus": {"alice": [0]}, "ssh_ports": {}})
    sp = make(tmp_path, "bob", docker=FakeDocker(running=["alice"]), npu_ids=[0])
    with caplog.at_level(logging.WARNING, "test-spawner"):
        e = refused(sp)
    assert e.status_code == 409
    assert e.jupyterhub_message == (
        "No free NPU on this server: all 1 NPUs are in use by other students' "
        "servers (1 needed, 0 free). Please try again later or ask the organisers."
    )
    assert e.mlw_retry_url == "/hub/spawn/bob"
    assert "Start of bob's server refused [npu_full]" in caplog.text


def test_missing_image_is_named_and_the_npus_go_back(tmp_path, docker_start):
    def missing(sp):
        raise docker_errors.ImageNotFound("No such image: course:1")

    docker_start["do"] = missing
    sp = make(tmp_path, image="course:1")
    e = refused(sp)
    assert (e.status_code, e.mlw_reason) == (503, messages.IMAGE_MISSING)
    assert "The environment image course:1 is not installed on this server." in e.jupyterhub_message
    assert "bob" not in sp.store.load()["npus"]


def test_docker_not_answering(tmp_path, docker_start):
    def down(sp):
        raise requests.exceptions.ConnectionError("Connection aborted")

    docker_start["do"] = down
    assert refused(make(tmp_path)).mlw_reason == messages.DOCKER_UNAVAILABLE


def test_container_exiting_at_once_shows_its_safe_last_lines(tmp_path, docker_start, monkeypatch):
    answers(monkeypatch, False)
    log = (
        b"[mlw-start] SSH root password (generated on the first start): pw123\n"
        b"course: cannot read the notebook list\n"
        b"JUPYTERHUB_API_TOKEN=" + TOKEN.encode() + b"\n"
        b"Traceback (most recent call last):\n"
        b'  File "/var/lib/x.py", line 1\n'
        b"ValueError: bad config in /etc/jupyterhub/secret.py\n"
    )
    sp = make(tmp_path, docker=FakeDocker(state={"Running": False, "ExitCode": 3, "Error": ""}, log=log))
    t0 = time.monotonic()
    e = refused(sp)
    assert time.monotonic() - t0 < 2, "an exited container is noticed at once, not after http_timeout"
    assert (e.status_code, e.mlw_reason) == (500, messages.EXITED)
    assert "Your server stopped right after it started (exit code 3)." in e.jupyterhub_message
    assert "course: cannot read the notebook list" in e.jupyterhub_html_message
    assert "ValueError: bad config in [hidden]" in e.jupyterhub_html_message
    for secret in (TOKEN, "pw123", "/etc/jupyterhub", "/var/lib", "Traceback"):
        assert secret not in e.jupyterhub_message and secret not in e.jupyterhub_html_message


def test_container_gone_before_its_address_was_read_counts_as_exited(tmp_path, docker_start):
    def vanished(sp):
        raise KeyError("ml-workshop-net")

    docker_start["do"] = vanished
    e = refused(make(tmp_path, docker=FakeDocker(state="gone")))
    assert e.mlw_reason == messages.EXITED
    assert "exit code unknown" in e.jupyterhub_message


def test_no_answer_in_time_is_a_timeout_before_jupyterhubs_own(tmp_path, docker_start, monkeypatch):
    probe = answers(monkeypatch, False)
    sp = make(tmp_path, http_timeout=1, start_timeout=60)
    sp.server = SimpleNamespace(base_url="/user/bob/")
    t0 = time.monotonic()
    e = refused(sp)
    assert 0.9 < time.monotonic() - t0 < 3
    assert (e.status_code, e.mlw_reason) == (504, messages.START_TIMEOUT)
    assert "did not answer within 1 seconds" in e.jupyterhub_message
    assert probe.urls[0] == "http://10.0.0.5:8888/user/bob/api"
    assert sp.store.load()["npus"] == {}


def test_start_timeout_bounds_the_whole_start(tmp_path, docker_start, monkeypatch):
    answers(monkeypatch, False)
    sp = make(tmp_path, http_timeout=60, start_timeout=3, start_margin=2.0)
    t0 = time.monotonic()
    assert refused(sp).mlw_reason == messages.START_TIMEOUT
    assert time.monotonic() - t0 < 2.5, "ends before JupyterHub's start_timeout (3 s)"


def test_a_server_that_answers_starts(tmp_path, docker_start, monkeypatch):
    answers(monkeypatch, True)
    sp = make(tmp_path)
    assert asyncio.run(sp.start()) == ("10.0.0.5", 8888)
    assert sp.store.load()["npus"] == {"bob": [0]}


def test_unexpected_errors_still_reach_the_student_in_words(tmp_path, docker_start):
    def broken(sp):
        raise OSError("No space left on device: /var/lib/docker/tmp")

    docker_start["do"] = broken
    e = refused(make(tmp_path))
    assert e.mlw_reason == messages.START_FAILED
    assert "/var/lib" not in e.jupyterhub_message and "/var/lib" in e.mlw_detail


def test_readiness_is_noticed_within_ready_poll_max(tmp_path, docker_start, monkeypatch):
    """The checks back off from 0.2 s but never pause longer than ready_poll_max: a server that
    starts answering after a few seconds is seen within that pause, not up to 2 s later."""
    calls = {"n": 0}

    async def fake(self, url):
        calls["n"] += 1
        return calls["n"] > 12  # answers on the 13th check

    monkeypatch.setattr(WorkshopSpawner, "_answers", fake)
    pauses = []
    real_sleep = asyncio.sleep

    async def sleep(seconds, *a, **kw):
        pauses.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr("ml_workshop.spawner.asyncio.sleep", sleep)
    sp = make(tmp_path)
    assert asyncio.run(sp.start()) == ("10.0.0.5", 8888)
    assert len(pauses) == 12 and pauses[0] == pytest.approx(0.2)
    assert max(pauses) == pytest.approx(sp.ready_poll_max) == pytest.approx(0.25)
