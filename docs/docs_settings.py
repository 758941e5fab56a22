"""The smallest settings that let autodoc import django_cronrunner; no database is opened."""

SECRET_KEY = "docs-build-only"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.messages",
    "django_cronrunner",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
TASKS = {"default": {"BACKEND": "django_cronrunner.backend.CronRunnerBackend"}}
