"""System checks and OPTIONS validation, as `manage.py check` and run_due_tasks report them."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils.module_loading import import_string
from pytest_django.fixtures import Settings

from tests.settings import TASKS_PACKAGE

# The full check run includes database checks (JSONField support).
pytestmark = pytest.mark.django_db

BACKEND = "django_cronrunner.backend.CronRunnerBackend"

#: The tasks framework's own check of every configured backend.
check_tasks = import_string(f"{TASKS_PACKAGE}.checks.check_tasks")


def configure(settings: Settings, **options: Any) -> None:
    """Replace the default backend's OPTIONS."""
    settings.TASKS = {**settings.TASKS, "default": {"BACKEND": BACKEND, "OPTIONS": options}}


def ours(messages: list[checks.CheckMessage]) -> list[checks.CheckMessage]:
    return [message for message in messages if (message.id or "").startswith("django_cronrunner")]


def test_the_test_settings_pass_every_check() -> None:
    assert ours(checks.run_checks()) == []
    assert list(check_tasks()) == []


def test_app_not_installed_is_e001_naming_the_backend(settings: Settings) -> None:
    without = [app for app in settings.INSTALLED_APPS if app != "django_cronrunner"]
    with override_settings(INSTALLED_APPS=without):
        (error,) = check_tasks()
    assert error.id == "django_cronrunner.E001"
    assert error.level == checks.ERROR
    assert "TASKS['default'] uses CronRunnerBackend" in error.msg
    assert "not in INSTALLED_APPS" in error.msg
    assert error.hint == "Add 'django_cronrunner' to INSTALLED_APPS and run migrate."


def test_unknown_database_is_e002_naming_the_alias(settings: Settings) -> None:
    configure(settings, database="replica")
    (error,) = check_tasks()
    assert error.id == "django_cronrunner.E002"
    assert error.msg == (
        "TASKS['default']['OPTIONS']['database'] names 'replica', which is not in DATABASES."
    )


def test_check_command_fails_on_our_errors(settings: Settings) -> None:
    configure(settings, database="replica")
    with pytest.raises(CommandError, match=r"django_cronrunner\.E002"):
        call_command("check")


def test_every_backend_is_checked(settings: Settings) -> None:
    settings.TASKS = {
        **settings.TASKS,
        "second": {"BACKEND": BACKEND, "OPTIONS": {"database": "nowhere"}},
    }
    assert [(error.id, "'second'" in error.msg) for error in check_tasks()] == [
        ("django_cronrunner.E002", True)
    ]


BAD_OPTIONS = [
    ({"lease_seconds": 9.5}, "['lease_seconds'] must be a number of at least 10"),
    ({"lease_seconds": "60"}, "['lease_seconds'] must be a number of at least 10"),
    ({"lease_seconds": False}, "['lease_seconds'] must be a number of at least 10"),
    ({"lease_seconds": float("nan")}, "['lease_seconds'] must be a number of at least 10"),
    ({"lease_seconds": float("inf")}, "['lease_seconds'] must be a number of at least 10"),
    ({"lease_seconds": 86_401}, "and at most 86400 (a day)"),
    ({"claim_size": 0}, "['claim_size'] must be a whole number of at least 1"),
    ({"claim_size": 2.5}, "['claim_size'] must be a whole number of at least 1"),
    ({"claim_size": None}, "['claim_size'] must be a whole number of at least 1"),
    ({"database": None}, "['database'] must be a string"),
    ({"schedules": [("nightly", {})]}, "['schedules'] must be a dict keyed by schedule name"),
    ({"retention": {"successful": 0}}, "['successful'] must be a positive number of days"),
    ({"retention": {"kept": 3}}, "['retention'] has unknown keys ['kept']"),
    (
        {"lease": 60, "claimsize": 2},
        "has unknown keys ['claimsize', 'lease']; known keys are ['claim_size', 'database', ",
    ),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS)
def test_bad_options_stop_the_check_command_naming_the_key(
    settings: Settings, options: dict[str, Any], message: str
) -> None:
    configure(settings, **options)
    with pytest.raises(ImproperlyConfigured) as caught:
        call_command("check")
    assert str(caught.value).startswith("TASKS['default']['OPTIONS']")
    assert message in str(caught.value)


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS[:7])
def test_bad_options_are_one_line_from_run_due_tasks(
    settings: Settings, options: dict[str, Any], message: str
) -> None:
    configure(settings, **options)
    with pytest.raises(CommandError) as caught:
        call_command("run_due_tasks")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "options",
    [
        {"lease_seconds": 10, "claim_size": 1},
        {"lease_seconds": 86_400, "claim_size": 500, "lock_file": "/tmp/x.lock"},
        {"retention": {"successful": None, "failed": 0.5}},
    ],
)
def test_edge_values_are_accepted(settings: Settings, options: dict[str, Any]) -> None:
    configure(settings, **options)
    assert list(check_tasks()) == []
