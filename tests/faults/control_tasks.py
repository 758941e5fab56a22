"""Tasks the control fault tests enqueue: each notes when it started and whether a stop had
been asked of it by then, in a file the test reads."""

from __future__ import annotations

import time

from django_cronrunner.compat import TaskContext, task


@task(takes_context=True)
def note_start(context: TaskContext, path: str, seconds: float) -> None:
    """Note `start <id> <asked> <time>`, work `seconds`, then stop if asked to."""
    # The time before the question: a stop requested before it must be seen by it.
    moment = time.time()
    asked = context.cancel_requested()  # type: ignore[attr-defined]
    with open(path, "a") as out:
        out.write(f"start {context.task_result.id} {asked} {moment!r}\n")
    time.sleep(seconds)
    context.raise_if_cancelled()  # type: ignore[attr-defined]


def starts(path: str) -> dict[str, list[tuple[bool, float]]]:
    """Return, by task id, each start noted in `path`: whether a stop was asked, and when."""
    noted: dict[str, list[tuple[bool, float]]] = {}
    try:
        with open(path) as lines:
            for line in lines:
                _, task_id, asked, moment = line.split()
                noted.setdefault(task_id, []).append((asked == "True", float(moment)))
    except FileNotFoundError:
        pass
    return noted
