"""The keyed HTTP trigger: run one batch, as run_due_tasks does, when a scheduler calls a URL."""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from cronrunner.errors import CronRunnerError, StorageUnavailable
from cronrunner.runner import describe_batch
from cronrunner.store import BatchSummary, StopReason
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.trigger_options import TriggerSettings, secret_problem

logger = logging.getLogger("django_cronrunner.trigger")

#: Our own header, for schedulers whose Authorization header is taken (Cloud Run's OIDC token).
KEY_HEADER = "X-Cronrunner-Key"
KEY_META = "HTTP_" + KEY_HEADER.upper().replace("-", "_")


def key_matches(presented: str, secret: str) -> bool:
    """Compare in constant time; hashing first hides the secret's length as well."""
    # surrogatepass: a path may decode to lone surrogates, which are simply a wrong key.
    digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(digest, hashlib.sha256(secret.encode()).digest())


def presented_key(request: HttpRequest, path_key: str | None) -> tuple[str, str] | None:
    """Return where the caller put a key and the key: our header first, then the path (a
    proxy may own Authorization), then `Authorization: Bearer`."""
    header = request.META.get(KEY_META)
    if header is not None:
        return "header", header
    if path_key is not None:
        return "path", path_key
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "bearer", token.strip()
    return None


def too_long_for(summary: BatchSummary) -> list[str]:
    """Name the task paths whose typical duration exceeds the whole budget: no call starts them."""
    return sorted(
        path for path, seconds in summary.too_long.items() if seconds > summary.max_seconds
    )


def summary_body(summary: BatchSummary) -> dict[str, Any]:
    """Counts, stop reason and backlog, and the task paths too long for the trigger: never a
    task's arguments, result or traceback."""
    body: dict[str, Any] = {
        "ran": summary.tasks_run,
        "succeeded": summary.succeeded,
        "failed": summary.failed,
        "recovered": summary.recovered,
        "scheduled": summary.scheduled,
        "backlog": summary.backlog,
        "stopped": str(summary.stop_reason),
        "duration": round(summary.duration, 3),
        "budget": summary.max_seconds,
        "too_long": too_long_for(summary),
    }
    if summary.stop_reason is StopReason.LOCK_HELD:
        body["skipped"] = "locked"
    return body


def _answer(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> HttpResponse:
    response = JsonResponse(body, status=status, headers=headers)
    # We log every refusal and failure ourselves, without the path: django.request would log
    # the path, which holds the secret when the key travels in it.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _client(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR") or "an unknown address")


@sensitive_variables("key")
async def _trigger(request: HttpRequest, key: str | None = None) -> HttpResponse:
    # Nothing may escape to Django's handler: django.request would log the path, which holds
    # the key in its path form, and DEBUG's error page would show it.
    try:
        return await _respond(request, key)
    except Exception:
        logger.exception("Trigger: the call failed.")
        return _answer(500, {"error": "the call failed; see the server log"})


@sensitive_variables("config", "key", "presented")
async def _respond(request: HttpRequest, key: str | None) -> HttpResponse:
    try:
        config = TriggerSettings.load()
    except ImproperlyConfigured as e:
        logger.error("Trigger disabled: %s", e)
        return _answer(500, {"error": "the trigger is misconfigured; see the server log"})
    if config.secret is None:
        logger.warning(
            "Trigger not found: CRONRUNNER_TRIGGER_SECRET is not set (a call from %s).",
            _client(request),
        )
        return _answer(404, {"error": "not found"})
    refusal = _refusal(request, key, config)
    if refusal is not None:
        return refusal
    try:
        # Off the thread that sync views share under ASGI, which a batch would hold for its
        # whole budget; under WSGI Django runs this view in a thread of its own anyway.
        summary = await sync_to_async(_run_batch, thread_sensitive=False)(config)
    except StorageUnavailable as e:
        logger.error("Trigger: %s", e)
        return _answer(503, {"error": "the database is unavailable"}, {"Retry-After": "60"})
    except (CronRunnerError, ImproperlyConfigured) as e:
        logger.error("Trigger: the batch could not run: %s", e)
        return _answer(500, {"error": "the batch could not run; see the server log"})
    except Exception:
        # A traceback in the response (DEBUG's error page) could show a task's arguments.
        logger.exception("Trigger: the batch failed.")
        return _answer(500, {"error": "the batch failed; see the server log"})
    logger.info("Trigger: %s", describe_batch(summary))
    unfit = too_long_for(summary)
    if unfit:
        logger.warning(
            "Trigger: %s typically take longer than the trigger's %gs budget, so no call starts "
            "them: run them from cron, a timer or a CronJob (run_due_tasks).",
            ", ".join(unfit),
            summary.max_seconds,
        )
    return _answer(200, summary_body(summary))


@sensitive_variables("config", "key", "presented")
def _refusal(request: HttpRequest, key: str | None, config: TriggerSettings) -> HttpResponse | None:
    """Answer a call that must run nothing, having logged why; None for one that may run."""
    assert config.secret is not None
    if key is not None and not config.key_in_path:
        logger.warning(
            "Trigger refused: a key in the path from %s, which CRONRUNNER_TRIGGER_KEY_IN_PATH "
            "does not allow; nothing was run.",
            _client(request),
        )
        return _answer(404, {"error": "not found"})
    allowed = ["POST", "GET"] if config.allow_get else ["POST"]
    if request.method not in allowed:
        logger.warning(
            "Trigger refused: %s from %s; nothing was run.",
            str(request.method)[:10],
            _client(request),
        )
        return _answer(405, {"error": f"use {' or '.join(allowed)}"}, {"Allow": ", ".join(allowed)})
    weakness = secret_problem(config.secret, str(getattr(settings, "SECRET_KEY", "")))
    if weakness is not None:
        # The system check says so at deploy time; a server started without it must not
        # guard a door that runs code with a guessable key.
        logger.error("Trigger disabled: CRONRUNNER_TRIGGER_SECRET %s.", weakness)
        return _answer(500, {"error": "the trigger's secret is unfit; see the server log"})
    presented = presented_key(request, key)
    if presented is None or not key_matches(presented[1], config.secret):
        reason = "no key" if presented is None else f"a wrong key in the {presented[0]}"
        logger.warning("Trigger refused: %s from %s; nothing was run.", reason, _client(request))
        return _answer(403, {"error": "forbidden"})
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    length = request.META.get("CONTENT_LENGTH") or "0"
    # The body is never read; a huge one is refused rather than left for the server to drain.
    if limit is not None and (not length.isdigit() or int(length) > limit):
        logger.warning("Trigger refused: a body of %s bytes; nothing was run.", length[:20])
        return _answer(413, {"error": f"the body must be at most {limit} bytes; send none"})
    return None


def _run_batch(config: TriggerSettings) -> BatchSummary:
    try:
        return run_due_tasks(
            backend_alias=config.backend,
            max_seconds=config.max_seconds,
            # The server owns its signals: a SIGTERM is its cue to finish the request and exit.
            handle_signals=False,
            # A task that outlasts the request would be killed, call after call.
            first_task_always_starts=False,
        )
    finally:
        # This thread is not the request's: Django closes only the request's connections.
        connections.close_all()


# Each batch commits its claims and results as it goes: it must never run inside a request-
# wide transaction, whichever database the backend uses (ATOMIC_REQUESTS).
class _EveryDatabase:
    def __contains__(self, alias: object) -> bool:
        return True


trigger: Any = csrf_exempt(never_cache(_trigger))
trigger._non_atomic_requests = _EveryDatabase()
