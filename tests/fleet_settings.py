"""Settings for runs on a fleet of hosts: the shortest lease, and a minutely schedule on demand."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import TASKS

_OPTIONS = TASKS["default"]["OPTIONS"]
# The shortest lease allowed: a host that goes silent loses its task within seconds.
_OPTIONS["lease_seconds"] = 10
if os.environ.get("CRONRUNNER_FLEET_SLOTS"):
    _OPTIONS["schedules"] = {
        "every-minute": {
            "task": "tests.testapp.tasks.append_line",
            "cron": "* * * * *",
            "kwargs": {"path": os.environ["CRONRUNNER_FLEET_SLOTS"], "line": "slot"},
        }
    }
