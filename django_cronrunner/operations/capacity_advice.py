"""The capacity report's advice: what to change, line by line, so that the runs keep up."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django_cronrunner.operations.capacity import CronLine, PathDuration, QueueFlow

#: Seconds of each interval a run should leave free: start-up, and the lock's hand-over.
INTERVAL_MARGIN = 5.0
#: A recommended budget leaves this much room over the work measured.
HEADROOM = 1.1

Figures = dict[str, float | int | str]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One concrete change, and the figures it rests on."""

    action: str
    figures: Figures

    def __str__(self) -> str:
        shown = ", ".join(f"{key} {value}" for key, value in self.figures.items())
        return f"{self.action} ({shown})"


def recommend(
    queues: list[QueueFlow], lines: list[CronLine], paths: list[PathDuration]
) -> list[Recommendation]:
    """Say what to change so that the runs keep up; nothing when they do."""
    several = len(lines) > 1
    found = unserved(queues, lines)
    found.extend(too_long(paths, lines, several))
    found.extend(growing_line(line, queues, lines, several) for line in lines if line.growing)
    return found


def unserved(queues: list[QueueFlow], lines: list[CronLine]) -> list[Recommendation]:
    """Name due tasks that no run of the window took the lock to run."""
    working = [line for line in lines if line.budget.runs]
    waiting = [
        queue
        for queue in queues
        if queue.due_now and not any(line.serves(queue.queue) for line in working)
    ]
    due = sum(queue.due_now for queue in waiting)
    if not waiting:
        return []
    if not working:
        held = sum(line.budget.lock_held for line in lines)
        if held:
            action = (
                f"every run in the window found the lock held while {due} tasks are due: one "
                "run has held it all along; is it stuck on a task?"
            )
            return [Recommendation(action, {"due now": due, "lock held": held})]
        action = (
            f"no run in the window while {due} tasks are due: check that run_due_tasks is "
            "scheduled (a crontab line or a systemd timer) and can start"
        )
        return [Recommendation(action, {"due now": due})]
    names = ", ".join(queue.queue for queue in waiting)
    plural = "s" if len(waiting) > 1 else ""
    action = (
        f"no run in the window took queue{plural} {names}, where {due} tasks are due: add "
        f"{'them' if plural else 'it'} to the --queue of a crontab line"
    )
    return [
        Recommendation(action, {"due now": due, "lines": "; ".join(line.label for line in working)})
    ]


def too_long(
    paths: list[PathDuration], lines: list[CronLine], several: bool
) -> list[Recommendation]:
    """Name task paths whose p95 exceeds the budget of every line that takes their queues."""
    found = []
    for path in paths:
        serving = [
            line
            for line in lines
            if line.max_seconds is not None
            and (not path.queues or any(line.serves(queue) for queue in path.queues))
        ]
        if not serving:
            continue
        line = max(serving, key=lambda line: line.max_seconds or 0.0)
        limit = line.max_seconds or 0.0
        if path.p95_seconds <= limit:
            continue
        needed = math.ceil(path.p95_seconds)
        # Budget-aware picking starts a task that cannot fit only as a run's first task.
        fix = (
            f"raise that line's --max-seconds to {needed}"
            if not line.takes_every_queue and line.queue_names <= set(path.queues)
            else f"give them a queue and a crontab line of their own with --max-seconds {needed}"
        )
        figures: Figures = {
            "p95 seconds": round(path.p95_seconds, 1),
            "attempts": path.attempts,
            "--max-seconds": f"{limit:g}",
        }
        if several:
            figures["line"] = line.label
        found.append(
            Recommendation(
                f"tasks of {path.task_path} take longer than the budget: each starts only as a "
                f"run's first task, and that run overruns its budget; {fix}",
                figures,
            )
        )
    return found


def growing_line(
    line: CronLine, queues: list[QueueFlow], lines: list[CronLine], several: bool
) -> Recommendation:
    """Say how a line whose backlog grows can keep up, from the work arriving in its queues."""
    # A queue that a line names is that line's work; a line without --queue does the rest.
    named = {name for other in lines for name in other.queue_names}
    mine = [
        queue
        for queue in queues
        if line.serves(queue.queue) and not (line.takes_every_queue and queue.queue in named)
    ]
    interval = line.interval_seconds or 60.0
    limit = line.max_seconds or 0.0
    demand = sum(queue.work_per_minute for queue in mine) * interval / 60
    where = f" on the line {line.label}" if several else ""
    which = f"the line {line.label}" if several else "one crontab line"
    figures: Figures = {
        "due tasks left": f"{line.backlog[0]} -> {line.backlog[-1]}",
        "arriving per minute": round(sum(queue.arrival_per_minute for queue in mine), 2),
        "drained per minute": round(sum(queue.drain_per_minute for queue in mine), 2),
        "work per run seconds": round(demand, 1),
        "budget used": f"{line.budget.share:.0%}",
    }
    if demand <= limit:
        return Recommendation(
            f"the budget{where} fits the work arriving, yet the backlog grows: check that a run "
            "starts every interval and finds the lock free",
            {**figures, "runs": line.budget.runs, "lock held": line.budget.lock_held},
        )
    if math.ceil(demand * HEADROOM) <= interval - INTERVAL_MARGIN:
        return Recommendation(
            f"raise --max-seconds to {math.ceil(demand * HEADROOM)}{where}",
            {**figures, "--max-seconds": f"{limit:g}"},
        )
    busy = [queue for queue in mine if queue.work_per_minute > 0]
    if len(busy) > 1:
        busiest = max(busy, key=lambda queue: queue.work_per_minute)
        share = busiest.work_per_minute / sum(queue.work_per_minute for queue in busy)
        return Recommendation(
            f"add a second crontab line for queue {busiest.queue} (--queue {busiest.queue} "
            "with a --lock-file of its own)",
            {**figures, f"queue {busiest.queue} share of the work": f"{share:.0%}"},
        )
    return Recommendation(
        f"{which} cannot keep up: make the tasks faster, or run a second line or host with "
        "its own --lock-file (PostgreSQL, MariaDB)",
        {**figures, "interval seconds": round(interval, 1)},
    )
