"""Dead man's switch pings: start, success and failure of each batch, the summary as body."""

from __future__ import annotations

import logging
import threading
import urllib.parse
import urllib.request

from cronrunner.drain import TaskReport
from cronrunner.runner import describe_batch
from cronrunner.store import BatchSummary, StopReason
from django_cronrunner.monitoring_options import PingUrls

logger = logging.getLogger("django_cronrunner")

#: healthchecks.io keeps the first 100 kB of a ping's body; a summary line is far shorter.
MAX_BODY = 10_000


def batch_failed(summary: BatchSummary) -> bool:
    """Say whether a batch should ping failure: a task failed, or the batch did not finish."""
    return summary.failed > 0 or summary.stop_reason in (StopReason.ERROR, StopReason.INTERRUPTED)


class Pinger:
    """Send pings that never fail the batch and never hold it up past their timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._warned = False

    def ping(self, url: str, body: str = "") -> bool:
        """POST body to url; return whether it was answered with a 2xx in time."""
        outcome: list[BaseException | int] = []
        # A thread bounds the whole ping, DNS included, which urllib's timeout does not.
        sender = threading.Thread(
            target=self._send, args=(url, body.encode()[:MAX_BODY], outcome), daemon=True
        )
        sender.start()
        sender.join(self.timeout)
        if not outcome:
            return self._failed(url, f"no answer within {self.timeout:g}s")
        result = outcome[0]
        if isinstance(result, BaseException):
            return self._failed(url, f"{type(result).__name__}: {result}")
        if not 200 <= result < 300:
            return self._failed(url, f"HTTP {result}")
        return True

    def _send(self, url: str, body: bytes, outcome: list[BaseException | int]) -> None:
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"User-Agent": "django-cronrunner"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                outcome.append(response.status)
        except Exception as e:
            outcome.append(e)

    def _failed(self, url: str, why: str) -> bool:
        # A monitor that is down must not fill the log: one line per batch says so.
        if not self._warned:
            self._warned = True
            logger.warning(
                "Monitoring ping to %s failed (%s); the batch goes on.", service(url), why
            )
        return False


def service(url: str) -> str:
    """Return the scheme and host of url: its path or query carries the check's key or UUID,
    and user:password@ may precede the host."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class PingHooks:
    """Ping start when a batch takes the lock, then success or failure when it ends."""

    def __init__(self, urls: PingUrls) -> None:
        self.urls = urls
        self.pinger = Pinger(urls.timeout)

    def batch_started(self, summary: BatchSummary) -> None:
        if self.urls.start:
            self.pinger.ping(self.urls.start)

    def task_finished(self, report: TaskReport) -> None:
        pass

    def batch_finished(self, summary: BatchSummary) -> None:
        url = self.urls.failure if batch_failed(summary) else self.urls.success
        if url:
            self.pinger.ping(url, describe_batch(summary))

    def run_failed(self, error: str) -> None:
        if self.urls.failure:
            self.pinger.ping(self.urls.failure, f"run failed before its batch started: {error}")
