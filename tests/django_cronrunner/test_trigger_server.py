"""The HTTP trigger inside a web server's process: it leaves the server its signals, and under
ASGI its batch holds up no other view."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from django.test import AsyncClient, Client
from pytest_django.fixtures import Settings

from django_cronrunner.run import runner
from django_cronrunner.run.runner import run_due_tasks
from tests.testapp import tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.trigger_urls")]

SECRET = "tR1gg3r-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU"
KEY = {"X-Cronrunner-Key": SECRET}
VISITOR = "django_cronrunner.web.visitor.VisitorTriggerMiddleware"


@pytest.fixture(autouse=True)
def trigger_settings(settings: Settings) -> Settings:
    settings.CRONRUNNER_TRIGGER_SECRET = SECRET
    settings.CRONRUNNER_TRIGGER_MAX_SECONDS = 5
    return settings


def servers_handler(signum: int, frame: FrameType | None) -> None:
    """Stand in for a web server's own SIGTERM handler (gunicorn's worker sets alive=False)."""


@pytest.fixture
def handler_during_batch(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Install the server's handler; record the SIGTERM handler in force while a batch runs."""
    assert threading.current_thread() is threading.main_thread()
    seen: list[Any] = []
    real = runner.run_batch

    def watched(*args: Any, **kwargs: Any) -> Any:
        seen.append(signal.getsignal(signal.SIGTERM))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "run_batch", watched)
    previous = signal.signal(signal.SIGTERM, servers_handler)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_trigger_batch_leaves_the_servers_signal_handler_alone(
    handler_during_batch: list[Any],
) -> None:
    # gunicorn's sync workers serve requests on the main thread: a handler installed for the
    # batch would take the arbiter's SIGTERM from the worker.
    response = Client().post("/cron/trigger/", headers=KEY)
    assert response.status_code == 200
    assert handler_during_batch == [servers_handler]
    assert signal.getsignal(signal.SIGTERM) is servers_handler


def test_run_due_tasks_installs_handlers_only_when_asked(
    handler_during_batch: list[Any],
) -> None:
    run_due_tasks(max_seconds=5, handle_signals=False)
    run_due_tasks(max_seconds=5)
    assert handler_during_batch[0] is servers_handler
    assert handler_during_batch[1] is not servers_handler  # the command's GracefulShutdown
    assert signal.getsignal(signal.SIGTERM) is servers_handler


@pytest.mark.parametrize("middleware", [[], [VISITOR]], ids=["plain", "visitor-mode"])
def test_under_asgi_a_batch_holds_up_no_sync_view(
    settings: Settings, middleware: list[str]
) -> None:
    settings.MIDDLEWARE = [*middleware, *settings.MIDDLEWARE]
    settings.CRONRUNNER_VISITOR_URL = "http://127.0.0.1:9/cron/trigger/"
    tasks.append_line.enqueue("/dev/null", "slow", sleep=1.5)

    async def trigger_and_page() -> tuple[int, int, float]:
        client = AsyncClient()
        call = asyncio.create_task(client.post("/cron/trigger/", headers=KEY))
        await asyncio.sleep(0.3)  # the batch's task is running
        started = time.monotonic()
        # A sync view: under ASGI it runs on the one thread all sync views share.
        page = await client.get("/page/", headers={"X-Cronrunner-Key": "not a visit"})
        took = time.monotonic() - started
        return (await call).status_code, page.status_code, took

    trigger_status, page_status, took = asyncio.run(trigger_and_page())
    assert (trigger_status, page_status) == (200, 200)
    assert took < 0.8, f"the page waited {took:.2f}s for the batch"
