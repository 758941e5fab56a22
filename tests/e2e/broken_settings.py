"""The test settings with the database's OPTIONS extended from CRONRUNNER_TEST_DB_OPTIONS
(JSON), to break the database the ways an operator meets: read-only, full."""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES["default"]["OPTIONS"] = {
    **DATABASES["default"].get("OPTIONS", {}),
    **json.loads(os.environ.get("CRONRUNNER_TEST_DB_OPTIONS", "{}")),
}
