"""Errors about stored tasks that the Django side raises or records."""

from cronrunner.errors import CronRunnerError


class TaskPathError(CronRunnerError):
    """A stored task path does not import to a django.tasks.Task."""


class ArgumentsError(CronRunnerError):
    """A stored task's arguments cannot be decoded."""


class NotJSONError(CronRunnerError, TypeError):
    """A task's arguments or return value cannot be stored as JSON."""


class BackendMismatch(CronRunnerError):
    """The backend alias does not name a CronRunnerBackend."""


class ReceiverError(CronRunnerError):
    """A receiver cannot be connected to run in the background."""


class ReceiverArgumentError(CronRunnerError, TypeError):
    """A signal argument cannot travel to a background receiver, or be rebuilt for it."""


class TaskTimedOut(CronRunnerError):
    """A task ran longer than its timeout and was stopped."""


class TaskProcessDied(CronRunnerError):
    """The child process running a task exited before reporting how the task ended."""


class TaskCancelled(CronRunnerError):
    """A ready task was cancelled (in the admin) before it ran."""
