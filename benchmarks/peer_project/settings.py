"""Settings for one peer, one database and one connection mode, read from PEER_CONFIG (JSON)."""

import json
import os

CONFIG = json.loads(os.environ["PEER_CONFIG"])

SECRET_KEY = "benchmark"
DEBUG = False
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    *CONFIG["apps"],
    "benchmarks.peer_project",
]
DATABASES = {"default": {**CONFIG["database"], "CONN_MAX_AGE": CONFIG["conn_max_age"]}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING_CONFIG = None
TASKS = {"default": CONFIG["tasks"]} if CONFIG.get("tasks") else {}
# django-q2: the database as broker, every result kept (0 = unlimited) so that finished tasks
# can be counted, retry longer than any run.
Q_CLUSTER = {"name": "bench", "orm": "default", "save_limit": 0, "timeout": 60, "retry": 120}
