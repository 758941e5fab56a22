"""The tasks the benchmarks enqueue: a no-op, so the queue's own cost shows, and a wait."""

import time

from django.tasks import task


@task
def noop(number: int) -> int:
    return number


@task
def wait(seconds: float) -> None:
    """Stand in for a task that waits on the network."""
    time.sleep(seconds)
