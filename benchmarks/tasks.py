"""The task the benchmark enqueues: as cheap as possible, so the queue's own cost shows."""

from django.tasks import task


@task
def noop(number: int) -> int:
    return number
