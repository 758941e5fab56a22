"""Each HTTP trigger recipe in contrib/http-trigger/, and the README's "No cron?" section, calls
the URL, method and header the view answers (tests/e2e/test_http_trigger.py replays them against
a real server)."""

from __future__ import annotations

import types
from typing import Any
from urllib.parse import urlsplit

import pytest
from croniter import croniter
from django.test import override_settings
from django.urls import path, resolve

from django_cronrunner.trigger_options import (
    DEFAULT_REQUEST_TIMEOUT,
    MARGIN_SECONDS,
    TriggerSettings,
    check_trigger,
)
from django_cronrunner.web.trigger import KEY_HEADER, trigger
from tests import recipes

GENERATED = "gEnErAtEd-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU1"


@pytest.mark.parametrize("name", sorted(recipes.ALL))
@override_settings(ROOT_URLCONF="tests.trigger_urls")
def test_each_recipe_calls_the_trigger_as_its_contract_says(name: str) -> None:
    call = recipes.ALL[name]()
    url = call.url.replace("$CRONRUNNER_TRIGGER_URL", recipes.EXAMPLE_URL)
    assert urlsplit(url).scheme == "https" and urlsplit(url).path == "/cron/trigger/"
    assert resolve(urlsplit(url).path).func is trigger
    # POST, except Vercel, which sends GET: the docs say to set CRONRUNNER_TRIGGER_ALLOW_GET.
    assert call.method == ("GET" if name == "vercel" else "POST")
    key_headers = {
        header: value
        for header, value in call.headers.items()
        if header == KEY_HEADER or (header == "Authorization" and value.startswith("Bearer "))
    }
    assert list(key_headers.values()) in (
        [recipes.SECRET],
        [f"Bearer {recipes.SECRET}"],
    ), call.headers


@pytest.mark.parametrize("name", sorted(recipes.ALL))
def test_each_schedule_is_valid_and_at_most_every_minute(name: str) -> None:
    schedule = recipes.ALL[name]().schedule
    if name == "pythonanywhere":
        assert schedule == ""  # the outside scheduler of the user's choice
    elif name == "eventbridge":
        assert schedule == "rate(1 minute)"
    else:
        assert croniter.is_valid(schedule), schedule


def test_eventbridge_never_retries_a_trigger_that_took_longer_than_its_five_seconds() -> None:
    import json

    template = json.loads((recipes.RECIPES / "eventbridge.json").read_text())
    (target,) = template["Resources"]["EveryMinute"]["Properties"]["Targets"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert template["Parameters"]["TriggerSecret"]["NoEcho"] is True


@pytest.mark.parametrize("name", sorted(recipes.ALL))
def test_each_caller_waits_as_long_as_a_call_may_last(name: str) -> None:
    call = recipes.ALL[name]()
    if name in ("vercel", "eventbridge"):
        # Vercel waits for its own function; EventBridge's 5 s are fixed (see its template).
        assert call.waits is None
    else:
        assert call.waits is not None and call.waits >= DEFAULT_REQUEST_TIMEOUT


def test_the_readmes_no_cron_section_sets_up_a_trigger_that_passes_its_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    section = recipes.readme_no_cron()
    monkeypatch.setenv("CRONRUNNER_TRIGGER_SECRET", GENERATED)
    settings: dict[str, Any] = {}
    exec(section.settings, settings)
    ours = {name: value for name, value in settings.items() if name.startswith("CRONRUNNER_")}
    assert set(ours) == {"CRONRUNNER_TRIGGER_SECRET", "CRONRUNNER_TRIGGER_REQUEST_TIMEOUT"}
    with override_settings(**ours):
        assert check_trigger() == []
        config = TriggerSettings.load()
    assert config.secret == GENERATED
    # What the section says of the budget is what the settings give.
    assert config.max_seconds == config.request_timeout - MARGIN_SECONDS
    assert f"the request timeout less {MARGIN_SECONDS:g} seconds" in section.text

    call = section.call()
    assert (call.method, call.headers) == ("POST", {"Authorization": f"Bearer {recipes.SECRET}"})
    assert call.waits is not None and call.waits >= config.request_timeout
    # startproject's urls.py has imported path and made urlpatterns.
    urls: dict[str, Any] = {"path": path, "urlpatterns": []}
    exec(section.urls, urls)
    urlconf = types.ModuleType("mysite.urls")
    urlconf.urlpatterns = urls["urlpatterns"]  # type: ignore[attr-defined]
    assert resolve(urlsplit(call.url).path, urlconf=urlconf).func is trigger

    # When to prefer the other ways, and what the trigger leaves to them.
    prose = " ".join(section.text.split())
    for words in ("crontab line", "systemd timer", "Kubernetes CronJob", "`too_long`", "cron."):
        assert words in prose, words
    assert "(docs/howto/http-trigger.md)" in section.text
    assert (recipes.REPO / "docs" / "howto" / "http-trigger.md").is_file()
