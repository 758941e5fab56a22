"""Exceptions raised by cronrunner and django_cronrunner."""


class CronRunnerError(Exception):
    """Base class for every error this project raises. Do not raise directly."""


class LockHeld(CronRunnerError):
    """Another run holds the lock file."""


class LockFileError(CronRunnerError):
    """The lock file cannot be created or opened."""

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message)
        #: What would fix it short of choosing another lock file ("Create the directory"),
        #: or "" when only another lock file would.
        self.remedy = remedy


class StorageUnavailable(CronRunnerError):
    """The task store cannot be reached."""


class InvalidSchedule(CronRunnerError):
    """A cron expression, time zone or catch-up policy is not valid."""


class RunnerDied(CronRunnerError):
    """The run that held a task died before it stored the task's outcome."""


class InvalidTaskSettings(CronRunnerError):
    """A task's retry or timeout setting has an impossible value."""
