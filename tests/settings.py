"""Settings for the test suite; CRONRUNNER_TEST_DB picks sqlite, postgresql or mariadb."""

import importlib.util
import os
import sys
import tempfile
import time

import django

#: Django 5.2 has no django.tasks; the backport provides it (and its built-in backends).
TASKS_PACKAGE = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"

# The end-to-end tests slow every process's start-up with this (seconds), the child's included.
# Only when asked: under libfaketime (the clock-skew tests) even time.sleep(0) fails.
if os.environ.get("CRONRUNNER_TEST_SLOW_START"):
    time.sleep(float(os.environ["CRONRUNNER_TEST_SLOW_START"]))
# ... and make the child process of timed tasks exit as it starts.
if os.environ.get("CRONRUNNER_TEST_CHILD_EXITS") and sys.argv[0].endswith("child.py"):
    raise SystemExit(3)

SECRET_KEY = "tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.admin",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_cronrunner",
    "tests.testapp",
    "tests.signalapp",
]
if importlib.util.find_spec("django_tasks") is not None:
    INSTALLED_APPS.append("tests.backportapp")
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "/static/"

VENDOR = os.environ.get("CRONRUNNER_TEST_DB", "sqlite")
if VENDOR == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("CRONRUNNER_PG_NAME", "cronrunner"),
            "USER": os.environ.get("CRONRUNNER_PG_USER", "postgres"),
            "HOST": os.environ.get("CRONRUNNER_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("CRONRUNNER_PG_PORT", "5432"),
            "TEST": {"NAME": os.environ.get("CRONRUNNER_PG_TEST_NAME", "test_cronrunner")},
        }
    }
elif VENDOR == "mariadb":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("CRONRUNNER_MYSQL_NAME", "cronrunner"),
            "USER": os.environ.get("CRONRUNNER_MYSQL_USER", "root"),
            "HOST": os.environ.get("CRONRUNNER_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("CRONRUNNER_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
            "TEST": {
                "NAME": os.environ.get("CRONRUNNER_MYSQL_TEST_NAME", "test_cronrunner"),
                "CHARSET": "utf8mb4",
            },
        }
    }
elif VENDOR == "sqlite":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # A file, not :memory:, so that subprocesses and threads share the database.
            "NAME": os.environ.get(
                "CRONRUNNER_SQLITE_NAME", os.path.join(tempfile.gettempdir(), "cronrunner-tests.db")
            ),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
            "TEST": {
                "NAME": os.environ.get(
                    "CRONRUNNER_SQLITE_TEST_NAME",
                    os.path.join(tempfile.gettempdir(), f"cronrunner-test-{os.getpid()}.db"),
                )
            },
        }
    }
else:
    raise RuntimeError(f"CRONRUNNER_TEST_DB must be sqlite, postgresql or mariadb, not {VENDOR!r}")

TASKS = {
    "default": {
        "BACKEND": "django_cronrunner.backend.CronRunnerBackend",
        "QUEUES": ["default", "emails", "reports"],
        "OPTIONS": {
            "lock_file": os.path.join(tempfile.gettempdir(), f"cronrunner-test-{os.getpid()}.lock"),
            # Fault tests shorten the lease of the runs they start.
            "lease_seconds": float(os.environ.get("CRONRUNNER_TEST_LEASE", "120")),
        },
    },
    "immediate": {"BACKEND": f"{TASKS_PACKAGE}.backends.immediate.ImmediateBackend"},
}
# The end-to-end monitoring tests configure OPTIONS['monitoring'] of the commands they start.
if os.environ.get("CRONRUNNER_TEST_MONITORING"):
    import json
    from typing import Any, cast

    _default = cast("dict[str, Any]", TASKS["default"])
    _default["OPTIONS"] = {
        **_default["OPTIONS"],
        "monitoring": json.loads(os.environ["CRONRUNNER_TEST_MONITORING"]),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
