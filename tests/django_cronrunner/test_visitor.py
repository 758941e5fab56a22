"""Visitor-driven mode: one background call of the trigger per interval, never in a request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import Client
from pytest_django.fixtures import Settings

from cronrunner.clock import FakeClock
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.web.visitor import IntervalClaim, VisitorTriggerMiddleware
from tests.e2e.conftest import wait_for
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.trigger_urls")]

SECRET = "vIsItOr-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU1t"
MIDDLEWARE = "django_cronrunner.web.visitor.VisitorTriggerMiddleware"


class Recorder(ThreadingHTTPServer):
    """Stand in for the trigger: record each call, answer after `delay` seconds, or redirect."""

    daemon_threads = True

    def __init__(self, delay: float = 0.0, redirect_to: str | None = None) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self.delay = delay
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.calls.append((self.command, self.path, self.headers["X-Cronrunner-Key"]))
                time.sleep(server.delay)
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cron/trigger/"


@contextmanager
def serving(server: Recorder) -> Iterator[Recorder]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with serving(Recorder(delay=2.0)) as server:
        yield server


@pytest.fixture
def visitor_mode(settings: Settings, recorder: Recorder) -> Settings:
    settings.CRONRUNNER_TRIGGER_SECRET = SECRET
    settings.CRONRUNNER_VISITOR_URL = recorder.url
    settings.CRONRUNNER_VISITOR_INTERVAL = 60
    settings.MIDDLEWARE = [MIDDLEWARE]
    return settings


def test_the_claim_lets_one_caller_through_per_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    claim = IntervalClaim(tmp_path / "run.visited", 60, clock)
    start = clock.now().timestamp()
    assert claim.take() == (True, start + 60)
    clock.advance(30)
    assert claim.take() == (False, start + 60)
    clock.advance(30)
    assert claim.take() == (True, start + 120)
    (tmp_path / "run.visited").write_text("garbled")
    assert claim.take()[0] is True


def test_threads_racing_for_one_interval_get_it_once(tmp_path: Path) -> None:
    clock = FakeClock()
    claims = [IntervalClaim(tmp_path / "run.visited", 60, clock) for _ in range(16)]
    barrier = threading.Barrier(len(claims))
    won: list[bool] = []

    def race(claim: IntervalClaim) -> None:
        barrier.wait()
        won.append(claim.take()[0])

    threads = [threading.Thread(target=race, args=(claim,)) for claim in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 15 + [True]


def test_visits_call_the_trigger_once_per_interval_after_the_response(
    client: Client, visitor_mode: Settings, recorder: Recorder
) -> None:
    tasks.add.enqueue(1, 2)
    for _ in range(10):
        started = time.monotonic()
        response = client.get("/page/")
        # The trigger's answer takes 2 s; no visitor waits for it.
        assert response.status_code == 200 and time.monotonic() - started < 1.0
    wait_for(lambda: recorder.calls)
    time.sleep(0.3)
    assert recorder.calls == [("POST", "/cron/trigger/", SECRET)]
    # The visitor's request never ran a task: that is the trigger's job, in its own request.
    assert TaskRecord.objects.get().status == "READY" and not BatchRun.objects.exists()


def test_the_triggers_own_call_is_not_a_visit(
    client: Client, visitor_mode: Settings, recorder: Recorder
) -> None:
    client.get("/page/", headers={"X-Cronrunner-Key": "anything"})
    time.sleep(0.3)
    assert recorder.calls == []


def test_two_processes_share_the_interval(visitor_mode: Settings, recorder: Recorder) -> None:
    def page(request: HttpRequest) -> HttpResponse:
        return HttpResponse("a page")

    workers = [VisitorTriggerMiddleware(page), VisitorTriggerMiddleware(page)]
    for _ in range(3):
        for worker in workers:
            worker(HttpRequest())
            worker.after_response()  # as request_finished calls it once the response is sent
    wait_for(lambda: recorder.calls)
    time.sleep(0.3)
    assert len(recorder.calls) == 1


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CRONRUNNER_VISITOR_URL", None, "needs CRONRUNNER_VISITOR_URL"),
        ("CRONRUNNER_VISITOR_URL", "ftp://127.0.0.1/", "needs CRONRUNNER_VISITOR_URL"),
        ("CRONRUNNER_VISITOR_INTERVAL", 0.5, "at least 1 second"),
        ("CRONRUNNER_TRIGGER_SECRET", None, "needs CRONRUNNER_TRIGGER_SECRET"),
    ],
)
def test_a_misconfigured_mode_refuses_to_start(
    visitor_mode: Settings, name: str, value: object, message: str
) -> None:
    setattr(visitor_mode, name, value)
    with pytest.raises(ImproperlyConfigured, match=message):
        Client().get("/page/")


def test_a_redirect_is_refused_so_the_key_goes_nowhere_else(
    visitor_mode: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    def page(request: HttpRequest) -> HttpResponse:
        return HttpResponse("a page")

    with serving(Recorder()) as elsewhere, serving(Recorder(redirect_to=elsewhere.url)) as here:
        visitor_mode.CRONRUNNER_VISITOR_URL = here.url
        VisitorTriggerMiddleware(page).call_trigger()
    assert here.calls == [("POST", "/cron/trigger/", SECRET)]
    # urllib would have followed it, the key header with it, to any host.
    assert elsewhere.calls == []
    assert "Visitor trigger: the call failed: HTTP Error 302: Found" in caplog.messages
    assert SECRET not in caplog.text
