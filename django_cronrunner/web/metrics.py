"""The metrics view: Prometheus exposition of every CronRunnerBackend, for staff or a token."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends
from django_cronrunner.web.trigger import key_matches


def token_matches(request: HttpRequest) -> bool:
    """Say whether the request carries `Authorization: Bearer <CRONRUNNER_METRICS_TOKEN>`."""
    token = getattr(settings, "CRONRUNNER_METRICS_TOKEN", None)
    header = request.headers.get("Authorization", "")
    if not token or not header.startswith("Bearer "):
        return False
    return key_matches(header.removeprefix("Bearer "), str(token))


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Serve the metrics to an active staff user or a scraper with the token."""
    user = getattr(request, "user", None)
    staff = user is not None and user.is_active and user.is_staff
    if not (staff or token_matches(request)):
        response = HttpResponse("Staff login or the metrics token is required.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="cronrunner metrics"'
        return response
    # Imported here: a site that includes django_cronrunner.urls for the trigger alone need not
    # install the prometheus extra.
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        from django_cronrunner.operations.metrics import registry_for
    except ImportError as e:
        raise ImproperlyConfigured(
            "The metrics view needs prometheus_client: pip install 'django-cronrunner[prometheus]'."
        ) from e
    backends = [
        backend
        for backend in (task_backends[alias] for alias in sorted(settings.TASKS))
        if isinstance(backend, CronRunnerBackend)
    ]
    # Each backend measured at its database's time, as the runs that wrote its rows were.
    body = generate_latest(registry_for(backends))
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
