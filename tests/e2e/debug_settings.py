"""The test settings as a new project has them: DEBUG on, no LOGGING."""

from tests.settings import *  # noqa: F403

DEBUG = True
