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


class TaskTimeout(CronRunnerError, TimeoutError):
    """A task ran longer than its timeout and was stopped (Django's proposed name)."""


#: The name this error had before Django proposed TaskTimeout; both name one class.
TaskTimedOut = TaskTimeout


class TaskProcessDied(CronRunnerError):
    """The child process running a task exited before reporting how the task ended."""


class TaskFailedInChild(CronRunnerError):
    """A task failed in its child process; the message holds the traceback it had there."""


class TaskCancelled(CronRunnerError):
    """A task was cancelled: before it ran, or stopped while it ran at the request of
    django_cronrunner.control.cancel()."""


class UniqueKeyError(CronRunnerError):
    """A unique task's key cannot be computed, or could not be taken."""


class ConcurrencyKeyError(CronRunnerError):
    """A task's concurrency key cannot be computed."""
