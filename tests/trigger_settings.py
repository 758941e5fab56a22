"""Settings of a real server that serves the HTTP trigger (field tests, visitor benchmark)."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import MIDDLEWARE as _MIDDLEWARE
from tests.settings import TASKS

ROOT_URLCONF = "tests.trigger_urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
CRONRUNNER_TRIGGER_SECRET = os.environ.get("CRONRUNNER_TEST_TRIGGER_SECRET")
CRONRUNNER_TRIGGER_MAX_SECONDS = float(os.environ.get("CRONRUNNER_TEST_TRIGGER_BUDGET", "5"))
CRONRUNNER_TRIGGER_ALLOW_GET = os.environ.get("CRONRUNNER_TEST_TRIGGER_ALLOW_GET") == "1"
CRONRUNNER_TRIGGER_KEY_IN_PATH = True
CRONRUNNER_VISITOR_URL = os.environ.get("CRONRUNNER_TEST_VISITOR_URL")
CRONRUNNER_VISITOR_INTERVAL = float(os.environ.get("CRONRUNNER_TEST_VISITOR_INTERVAL", "60"))
MIDDLEWARE = list(_MIDDLEWARE)
if CRONRUNNER_VISITOR_URL:
    MIDDLEWARE.insert(0, "django_cronrunner.web.visitor.VisitorTriggerMiddleware")

# Every worker process of the server must share one lock file (tests.settings makes one per pid).
_options = {**TASKS["default"]["OPTIONS"], "lock_file": os.environ["CRONRUNNER_TEST_LOCK_FILE"]}
if os.environ.get("CRONRUNNER_TEST_SCHEDULE_FILE"):
    _options["schedules"] = {
        "every-minute": {
            "task": "tests.testapp.tasks.append_line",
            "cron": "* * * * *",
            "kwargs": {"path": os.environ["CRONRUNNER_TEST_SCHEDULE_FILE"], "line": "slot"},
        }
    }
TASKS = {**TASKS, "default": {**TASKS["default"], "OPTIONS": _options}}
