"""The task framework in use: Django's django.tasks (6.0+), or the django_tasks backport (5.2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import django
from django.core.exceptions import ImproperlyConfigured

#: True when the tasks framework is Django's own; False when it is the backport.
NATIVE_TASKS = django.VERSION >= (6, 0)
#: The logger the framework writes a line to for each task it starts and finishes.
TASKS_LOGGER = "django.tasks" if NATIVE_TASKS else "django_tasks"

# Type checkers see Django's names; the backport mirrors them under older names.
if TYPE_CHECKING or NATIVE_TASKS:
    from django.tasks import (
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.json import normalize_json
else:
    try:
        from django_tasks import (
            TaskContext,
            TaskResult,
            TaskResultStatus,
            default_task_backend,
            task,
            task_backends,
        )
    except ImportError as e:
        raise ImproperlyConfigured(
            f"django-cronrunner needs Django 6.0 or newer, or on Django "
            f"{django.get_version()} the django-tasks backport: "
            "pip install 'django-cronrunner[backport]'."
        ) from e
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import Task, TaskError
    from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued, task_finished, task_started
    from django_tasks.utils import normalize_json

__all__ = [
    "NATIVE_TASKS",
    "TASKS_LOGGER",
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "default_task_backend",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
