"""Tasks declared with `django_tasks.task`, as apps written for the backport do."""

from typing import Any

from django_tasks import TaskContext, task


@task
def shout(word: str) -> str:
    return word.upper()


@task(priority=7, queue_name="reports", takes_context=True)
def report_attempt(context: TaskContext, name: str) -> dict[str, Any]:
    return {"name": name, "attempt": context.attempt}


@task
def fail_loudly() -> None:
    raise RuntimeError("the backport task failed")
