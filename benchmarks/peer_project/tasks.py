"""The no-op task every peer runs, so that the queue's own cost shows; `noop` is found by path."""

from typing import Any

from django.conf import settings

KIND = settings.CONFIG["kind"]

noop: Any
if KIND == "django.tasks":
    from django.tasks import task

    @task
    def noop(number: int) -> int:
        return number

elif KIND == "procrastinate":
    from procrastinate.contrib.django import app

    @app.task(name="noop")
    def noop(number: int) -> int:
        return number

else:  # django-q2 calls a plain function by its dotted path

    def noop(number: int) -> int:
        return number
