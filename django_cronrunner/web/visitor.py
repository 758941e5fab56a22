"""Visitor-driven runs (opt-in): after a response is sent, at most once per interval across all
of the site's worker processes, call the HTTP trigger from a background thread, as WP-Cron does.

The interval is claimed in a small file next to the run's lock file, under an flock: every
worker on the host shares it with no setting, and no cache backend can silently make the claim
per process (Django's default cache, LocMemCache, is per process). Several hosts claim one
interval each; their calls overlap as cron runs on several hosts do, which is safe.
"""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase

from cronrunner.clock import Clock, SystemClock
from django_cronrunner.backend import get_backend
from django_cronrunner.trigger_options import ANSWER_GRACE, TriggerSettings
from django_cronrunner.web.trigger import KEY_HEADER, KEY_META

logger = logging.getLogger("django_cronrunner.visitor")


class IntervalClaim:
    """Let one caller in `interval` seconds through, across processes, by a file under flock."""

    def __init__(self, path: Path, interval: float, clock: Clock | None = None) -> None:
        self.path = path
        self.interval = interval
        self.clock = clock or SystemClock()

    def take(self) -> tuple[bool, float]:
        """Claim the interval if the last claim is at least `interval` old; return whether this
        caller got it and the earliest time (POSIX seconds) anyone may claim again."""
        now = self.clock.now().timestamp()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False, now + self.interval  # another worker is claiming this moment
            last = _read_time(fd)
            if last is not None and 0 <= now - last < self.interval:
                return False, last + self.interval
            os.ftruncate(fd, 0)
            os.pwrite(fd, repr(now).encode(), 0)
            return True, now + self.interval
        finally:
            os.close(fd)  # closing drops the flock


def _read_time(fd: int) -> float | None:
    try:
        value = float(os.pread(fd, 64, 0).decode())
    except (UnicodeDecodeError, ValueError):
        return None  # never claimed, or garbled: claim it
    return value if math.isfinite(value) else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would follow one, key header and all, even to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError for the 3xx answer


class VisitorTriggerMiddleware:
    """Call the trigger in the background after some responses; never run tasks in a request."""

    # Under ASGI a sync-only middleware would hold the thread that sync views share for as long
    # as the views it wraps take, the trigger's batch included.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)
        trigger = TriggerSettings.load()
        url = getattr(settings, "CRONRUNNER_VISITOR_URL", None)
        interval = getattr(settings, "CRONRUNNER_VISITOR_INTERVAL", 60.0)
        if trigger.secret is None:
            raise ImproperlyConfigured(
                "VisitorTriggerMiddleware needs CRONRUNNER_TRIGGER_SECRET: it calls the trigger."
            )
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            raise ImproperlyConfigured(
                "VisitorTriggerMiddleware needs CRONRUNNER_VISITOR_URL, the trigger's http(s) "
                "URL as this server reaches it (e.g. http://127.0.0.1:8000/cron/trigger/)."
            )
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not 1 <= interval < math.inf
        ):
            raise ImproperlyConfigured("CRONRUNNER_VISITOR_INTERVAL must be at least 1 second.")
        self.secret = trigger.secret
        self.url = url
        self.timeout = trigger.max_seconds + ANSWER_GRACE
        lock_path = get_backend(trigger.backend).config.lock_path()
        self.claim = IntervalClaim(lock_path.with_suffix(".visited"), float(interval))
        #: Before this (POSIX seconds) no request of this process looks at the claim file.
        self.not_before = 0.0
        self.pending = False
        request_finished.connect(self.after_response)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        response = self.get_response(request)
        self.note_visit(request)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await self.get_response(request)
        self.note_visit(request)
        return response

    def note_visit(self, request: HttpRequest) -> None:
        """Ask for a call after the response if the interval may have passed: one comparison
        per request. The trigger's own call is no visit."""
        if KEY_META not in request.META and self.claim.clock.now().timestamp() >= self.not_before:
            self.pending = True

    def after_response(self, **kwargs: Any) -> None:
        """Receive request_finished: the response has gone to the visitor."""
        if not self.pending:
            return
        self.pending = False
        try:
            claimed, self.not_before = self.claim.take()
        except OSError as e:
            logger.warning("Visitor trigger: cannot claim %s: %s", self.claim.path, e)
            self.not_before = self.claim.clock.now().timestamp() + self.claim.interval
            return
        if claimed:
            thread = threading.Thread(target=self.call_trigger, name="cronrunner-visitor")
            thread.daemon = True  # a worker that exits must not wait for a batch
            thread.start()

    def call_trigger(self) -> None:
        """POST to the trigger and wait for its answer, off the visitor's request."""
        request = urllib.request.Request(
            self.url, data=b"", method="POST", headers={KEY_HEADER: self.secret}
        )
        # No proxy from the environment: the call is meant for this site itself.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        try:
            with opener.open(request, timeout=self.timeout) as response:
                logger.info("Visitor trigger: %s", response.read(2048).decode(errors="replace"))
        except (OSError, ValueError) as e:
            # Neither the URL (it may hold the key) nor the key is logged.
            logger.warning("Visitor trigger: the call failed: %s", e)
