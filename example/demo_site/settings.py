"""Settings of the demo project: SQLite, the console email backend, django-cronrunner."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEMO_VAR_DIR", BASE_DIR / "var"))

SECRET_KEY = "demo-only-not-secret"
DEBUG = True
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "Europe/London"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_cronrunner",
    "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "demo_site.urls"
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "demo.sqlite3",
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }
}

EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"

TASKS = {
    "default": {
        "BACKEND": "django_cronrunner.backend.CronRunnerBackend",
        "QUEUES": ["default", "emails", "media"],
        "OPTIONS": {
            "lock_file": str(VAR_DIR / "run_due_tasks.lock"),
            "schedules": {
                "heartbeat": {"task": "shop.tasks.record_heartbeat", "cron": "* * * * *"},
                "nightly-sales-report": {
                    "task": "shop.tasks.nightly_sales_report",
                    "cron": "30 2 * * *",
                    "timezone": "Europe/London",
                },
            },
        },
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_cronrunner": {"handlers": ["console"], "level": "INFO"},
        # run_due_tasks -v 2 already prints a line per task.
        "django.tasks": {"level": "WARNING"},
    },
}
