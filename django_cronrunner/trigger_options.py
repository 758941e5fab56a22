"""The HTTP trigger's settings (CRONRUNNER_TRIGGER_*), checked, and the system check of them."""

from __future__ import annotations

import math
import string
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from django_cronrunner.monitoring_options import Monitoring, parse_monitoring

#: How long, past the budget, a caller should wait for the answer: the task in progress when
#: the budget ends still finishes.
ANSWER_GRACE = 60

#: The request timeout assumed when none is set: gunicorn's default --timeout.
DEFAULT_REQUEST_TIMEOUT = 30.0
#: What a call needs past its budget, besides the monitoring hooks' timeouts: the last task
#: running past its typical duration, the closing statements and the answer's way out.
MARGIN_SECONDS = 5.0

#: Shortest secret the system check accepts: secrets.token_urlsafe(32) gives 43 characters.
MIN_SECRET_LENGTH = 32
#: The secret travels in headers and URL paths: only characters that need no escaping.
SECRET_ALPHABET = frozenset(string.ascii_letters + string.digits + "-_.~")
#: Fewer distinct characters than this looks typed by hand ("aaaa...", "abcabc...").
MIN_DISTINCT_CHARACTERS = 10
#: Words that say a secret was copied from an example rather than generated.
PLACEHOLDER_WORDS = ("change", "secret", "example", "default", "insecure", "password", "xxxx")


class BudgetPastTimeout(ImproperlyConfigured):
    """The trigger's budget, with its margin, does not fit the platform's request timeout."""


@dataclass(frozen=True, slots=True)
class TriggerSettings:
    """The CRONRUNNER_TRIGGER_* settings, checked."""

    secret: str | None
    max_seconds: float = DEFAULT_REQUEST_TIMEOUT - MARGIN_SECONDS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    backend: str = "default"
    allow_get: bool = False
    key_in_path: bool = False

    @classmethod
    def load(cls) -> TriggerSettings:
        """Read the settings, raising ImproperlyConfigured naming the first bad one, or
        BudgetPastTimeout when the budget and its margin outrun the request timeout."""
        secret = getattr(settings, "CRONRUNNER_TRIGGER_SECRET", None)
        if secret is not None and not isinstance(secret, str):
            raise ImproperlyConfigured("CRONRUNNER_TRIGGER_SECRET must be a string or None.")
        backend = getattr(settings, "CRONRUNNER_TRIGGER_BACKEND", "default")
        if not isinstance(backend, str):
            raise ImproperlyConfigured("CRONRUNNER_TRIGGER_BACKEND must be a TASKS alias.")
        timeout = _seconds("REQUEST_TIMEOUT", DEFAULT_REQUEST_TIMEOUT)
        waits = {"to end the last task and the batch": MARGIN_SECONDS, **monitoring_waits(backend)}
        margin = sum(waits.values())
        needs = ", ".join(f"{seconds:g}s {what}" for what, seconds in waits.items())
        if timeout <= margin:
            raise BudgetPastTimeout(
                f"CRONRUNNER_TRIGGER_REQUEST_TIMEOUT ({timeout:g}s) leaves no time for a batch: "
                f"a call needs {margin:g}s past its budget ({needs})."
            )
        # Unset, the budget is the longest that fits.
        max_seconds = _seconds("MAX_SECONDS", timeout - margin)
        if max_seconds + margin > timeout:
            raise BudgetPastTimeout(
                f"CRONRUNNER_TRIGGER_MAX_SECONDS ({max_seconds:g}s) plus what a call needs past "
                f"its budget ({needs}) is more than CRONRUNNER_TRIGGER_REQUEST_TIMEOUT "
                f"({timeout:g}s), after which the platform kills the call mid-task."
            )
        flags = {}
        for name in ("ALLOW_GET", "KEY_IN_PATH"):
            value = getattr(settings, f"CRONRUNNER_TRIGGER_{name}", False)
            if not isinstance(value, bool):
                raise ImproperlyConfigured(f"CRONRUNNER_TRIGGER_{name} must be True or False.")
            flags[name.lower()] = value
        return cls(
            secret=secret or None,
            max_seconds=max_seconds,
            request_timeout=timeout,
            backend=backend,
            **flags,
        )


def _seconds(name: str, default: float) -> float:
    value = getattr(settings, f"CRONRUNNER_TRIGGER_{name}", None)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ImproperlyConfigured(
            f"CRONRUNNER_TRIGGER_{name} must be a positive number of seconds."
        )
    return float(value)


def _monitoring(alias: str) -> Monitoring:
    backend = getattr(settings, "TASKS", {}).get(alias)
    options = backend.get("OPTIONS") if isinstance(backend, dict) else None
    try:
        return parse_monitoring(alias, (options or {}).get("monitoring", {}))
    except (AttributeError, ImproperlyConfigured):
        # Options the backend's own check reports, or no such backend (E023).
        return Monitoring()


def monitoring_waits(alias: str) -> dict[str, float]:
    """Say what the end of a batch of `alias` may wait on, past its budget, and for how long."""
    monitoring = _monitoring(alias)
    waits = {}
    if monitoring.checkins is not None:
        waits["for the last check-in ping"] = monitoring.checkins.timeout
    if monitoring.sentry is not None:
        waits["for Sentry's flush"] = monitoring.sentry.timeout
    return waits


def secret_problem(secret: str, secret_key: str = "") -> str | None:
    """Say what makes `secret` unfit to guard the trigger, or None if nothing does."""
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is {len(secret)} characters long; it needs at least {MIN_SECRET_LENGTH}"
    if not set(secret) <= SECRET_ALPHABET:
        return "has characters other than letters, digits and - _ . ~ (it travels in URLs)"
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS:
        return "repeats a few characters: it looks typed by hand, not generated"
    lowered = secret.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"contains {word!r}: it looks like a placeholder, not a generated secret"
    if secret == secret_key:
        return "is the SECRET_KEY, which must never appear in a URL or a scheduler's settings"
    return None


def check_trigger(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report trigger settings that are invalid, a budget past the request timeout, a backend
    alias that TASKS lacks, or a weak secret."""
    try:
        config = TriggerSettings.load()
    except BudgetPastTimeout as e:
        return [
            checks.Error(
                str(e),
                hint="Lower CRONRUNNER_TRIGGER_MAX_SECONDS, or unset it to have the longest "
                "budget that fits; set CRONRUNNER_TRIGGER_REQUEST_TIMEOUT to the worker timeout "
                "the server enforces (gunicorn --timeout, uWSGI harakiri).",
                id="django_cronrunner.E022",
            )
        ]
    except ImproperlyConfigured as e:
        return [checks.Error(str(e), id="django_cronrunner.E020")]
    if config.secret is None:
        return []
    found: list[checks.CheckMessage] = []
    if config.backend not in getattr(settings, "TASKS", {}):
        found.append(
            checks.Error(
                f"CRONRUNNER_TRIGGER_BACKEND is {config.backend!r}, which TASKS does not define.",
                id="django_cronrunner.E023",
            )
        )
    problem = secret_problem(config.secret, str(getattr(settings, "SECRET_KEY", "")))
    if problem is not None:
        found.append(
            checks.Error(
                f"CRONRUNNER_TRIGGER_SECRET {problem}.",
                hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
                id="django_cronrunner.E021",
            )
        )
    return found
