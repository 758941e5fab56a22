"""The capacity planner over crafted history, with a fake clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from cronrunner.clock import FakeClock
from django_cronrunner.compat import task_backends
from django_cronrunner.models import BatchRun, TaskDuration, TaskRecord
from django_cronrunner.operations.capacity import capacity_report, describe_capacity

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def run_row(
    started: datetime,
    *,
    backlog: int = 0,
    budget: float = 50,
    used: float = 10,
    line: str = "*",
    stop_reason: str | None = None,
) -> BatchRun:
    """Return an unsaved batch log row of a run that started at `started`."""
    return BatchRun(
        worker_id="w",
        host="web1",
        pid=1,
        backend_name="default",
        queues=line,
        started_at=started,
        finished_at=started + timedelta(seconds=used),
        duration=used,
        max_seconds=budget,
        backlog=backlog,
        stop_reason=stop_reason or ("budget spent" if used >= budget else "drained"),
    )


def history(
    clock: FakeClock,
    *,
    minutes: int = 60,
    arrivals: dict[str, int],
    drained: dict[str, int],
    seconds: dict[str, float],
    budget: float = 50,
    used: float = 10,
    line: str = "*",
    every: int = 1,
    offset: float = 1,
) -> None:
    """Store a history of one crontab line: every `every` minutes, per queue, tasks arrive and
    some finish, then the line's run starts `offset` seconds later; the ones that did not
    finish stay due, and each run records them as the backlog it left."""
    tasks: list[TaskRecord] = []
    runs: list[BatchRun] = []
    left = 0
    for _ in range(minutes // every):
        now = clock.now() + timedelta(seconds=1)  # inside the window, which excludes its start
        for queue, count in arrivals.items():
            done = drained[queue]
            left += count - done
            for index in range(count):
                finished = index < done
                tasks.append(
                    TaskRecord(
                        backend_name="default",
                        task_path=f"shop.tasks.{queue}",
                        queue_name=queue,
                        status="SUCCESSFUL" if finished else "READY",
                        due_at=now,
                        enqueued_at=now,
                        last_attempted_at=now if finished else None,
                        finished_at=now + timedelta(seconds=seconds[queue]) if finished else None,
                    )
                )
        started = now + timedelta(seconds=offset)
        runs.append(run_row(started, backlog=left, budget=budget, used=used, line=line))
        clock.advance(60 * every)
    TaskRecord.objects.bulk_create(tasks)
    BatchRun.objects.bulk_create(runs)


def due_task(due_at: datetime, queue: str = "default") -> None:
    TaskRecord.objects.create(
        backend_name="default",
        task_path=f"shop.tasks.{queue}",
        queue_name=queue,
        status="READY",
        due_at=due_at,
        enqueued_at=due_at,
    )


def test_a_healthy_runner_gets_no_recommendation() -> None:
    clock = FakeClock(START)
    history(clock, arrivals={"default": 5}, drained={"default": 5}, seconds={"default": 2.0})
    TaskDuration.objects.create(
        backend_name="default", task_path="shop.tasks.default", samples=[2.0] * 20
    )
    report = capacity_report(task_backends["default"], clock.now())
    [queue] = report.queues
    assert queue.arrival_per_minute == pytest.approx(5.0)
    assert queue.drain_per_minute == pytest.approx(5.0)
    assert queue.due_now == 0 and queue.mean_seconds == pytest.approx(2.0)
    [line] = report.lines
    assert not line.growing and line.minutes_to_clear == 0
    assert line.budget.runs == report.budget.runs == 60
    assert line.interval_seconds == 60 and line.max_seconds == 50
    assert report.budget.share == pytest.approx(0.2)
    assert report.recommendations == []
    assert describe_capacity(report)[-1] == "No recommendation: the runs keep up."


def test_tasks_that_arrived_since_the_last_run_are_no_growing_backlog() -> None:
    # A healthy minutely runner: each run drains what is due, yet tasks that came due since
    # the last run are due now, so more arrived in the window than were drained.
    clock = FakeClock(START)
    history(clock, arrivals={"default": 1}, drained={"default": 1}, seconds={"default": 2.0})
    due_task(clock.now() - timedelta(seconds=20))
    report = capacity_report(task_backends["default"], clock.now())
    [queue] = report.queues
    assert queue.due_now == 1 and queue.arrived > queue.drained
    assert report.recommendations == []
    [line] = report.lines
    assert line.backlog == [0] * 60 and not line.growing


def test_a_budget_too_small_for_the_work_says_how_far_to_raise_it() -> None:
    clock = FakeClock(START)
    # 12 tasks of 4 s arrive each minute (48 s of work); a 30 s budget drains 7 of them.
    history(
        clock,
        arrivals={"default": 12},
        drained={"default": 7},
        seconds={"default": 4.0},
        budget=30,
        used=30,
    )
    report = capacity_report(task_backends["default"], clock.now())
    [queue] = report.queues
    assert queue.due_now == 60 * 5
    [line] = report.lines
    assert line.growing and line.minutes_to_clear is None
    assert line.backlog_per_minute == pytest.approx(5.0)
    [advice] = report.recommendations
    # Work per run: 12 arrivals/min x 4 s mean = 48 s, with 10% headroom: 53.
    assert advice.action == "raise --max-seconds to 53"
    assert advice.figures["due tasks left"] == "5 -> 300"
    assert advice.figures["work per run seconds"] == 48.0
    assert advice.figures["--max-seconds"] == "30"
    assert advice.figures["budget used"] == "100%"


def test_a_steady_backlog_is_not_called_growing() -> None:
    # Runs that spend their budget and leave 40 +/- 3 due tasks each time: no trend.
    clock = FakeClock(START)
    BatchRun.objects.bulk_create(
        run_row(START + timedelta(minutes=minute, seconds=1), backlog=40 + (minute * 7) % 4 - 2)
        for minute in range(60)
    )
    clock.advance(3600)
    report = capacity_report(task_backends["default"], clock.now())
    [line] = report.lines
    assert not line.growing and min(line.backlog) == 38 and max(line.backlog) == 41
    assert "due tasks left 38 -> 39, not shrinking" in "\n".join(describe_capacity(report))


def test_more_work_than_a_minute_holds_asks_for_a_second_line_for_the_busiest_queue() -> None:
    clock = FakeClock(START)
    history(
        clock,
        arrivals={"default": 10, "reports": 2},
        drained={"default": 10, "reports": 1},
        seconds={"default": 1.0, "reports": 40.0},
        used=50,
    )
    report = capacity_report(task_backends["default"], clock.now())
    [advice] = report.recommendations
    assert advice.action.startswith("add a second crontab line for queue reports")
    assert advice.figures["queue reports share of the work"] == "89%"  # 80 s of 90 s a minute
    assert advice.figures["work per run seconds"] == 90.0


def test_a_path_longer_than_the_budget_runs_only_first_and_overruns() -> None:
    clock = FakeClock(START)
    history(clock, arrivals={"default": 1}, drained={"default": 1}, seconds={"default": 1.0})
    TaskDuration.objects.create(
        backend_name="default", task_path="shop.tasks.export", samples=[70.0] * 18 + [80.0, 81.0]
    )
    [advice] = capacity_report(task_backends["default"], clock.now()).recommendations
    assert advice.action == (
        "tasks of shop.tasks.export take longer than the budget: each starts only as a run's "
        "first task, and that run overruns its budget; give them a queue and a crontab line of "
        "their own with --max-seconds 80"
    )
    assert advice.figures == {"p95 seconds": 80.0, "attempts": 20, "--max-seconds": "50"}


def reports_line(clock: FakeClock, budget: float) -> None:
    """Store a main line without --queue (50 s, each minute) and a `--queue reports` line with
    `budget`, every two minutes, whose 80 s report runs alone."""
    history(
        FakeClock(clock.now()),
        arrivals={"default": 5},
        drained={"default": 5},
        seconds={"default": 2.0},
    )
    history(
        clock,
        arrivals={"reports": 1},
        drained={"reports": 1},
        seconds={"reports": 80.0},
        budget=budget,
        used=80,
        line="reports",
        every=2,
        offset=30,
    )
    TaskDuration.objects.create(
        backend_name="default", task_path="shop.tasks.reports", samples=[80.0] * 20
    )


def test_each_crontab_line_is_measured_on_its_own() -> None:
    clock = FakeClock(START)
    reports_line(clock, budget=90)
    report = capacity_report(task_backends["default"], clock.now())
    # The report fits its own line's budget: nothing to change.
    assert report.recommendations == []
    main, reports = report.lines
    assert (main.label, main.max_seconds, main.interval_seconds) == ("without --queue", 50, 60)
    assert (reports.label, reports.max_seconds, reports.interval_seconds) == (
        "--queue reports",
        90,
        120,
    )
    assert report.budget.runs == 90
    text = describe_capacity(report)
    assert "  line --queue reports: 30 runs (0 spent their budget, 0 found the lock held), " in (
        "\n".join(text)
    )


def test_advice_for_one_of_several_lines_names_that_line() -> None:
    clock = FakeClock(START)
    history(
        FakeClock(START),
        arrivals={"default": 12},
        drained={"default": 7},
        seconds={"default": 4.0},
        budget=30,
        used=30,
    )
    history(
        clock,
        arrivals={"reports": 1},
        drained={"reports": 1},
        seconds={"reports": 10.0},
        line="reports",
        every=2,
        offset=30,
    )
    [advice] = capacity_report(task_backends["default"], clock.now()).recommendations
    # The reports line's 10 s a minute are its own work, not the main line's.
    assert advice.action == "raise --max-seconds to 53 on the line without --queue"
    assert advice.figures["arriving per minute"] == 12.0


def test_a_path_past_its_own_lines_budget_asks_to_raise_that_line() -> None:
    clock = FakeClock(START)
    reports_line(clock, budget=60)
    [advice] = capacity_report(task_backends["default"], clock.now()).recommendations
    assert advice.action.startswith("tasks of shop.tasks.reports take longer than the budget")
    assert advice.action.endswith("raise that line's --max-seconds to 80")
    assert advice.figures["line"] == "--queue reports"
    assert advice.figures["--max-seconds"] == "60"


def test_a_shrinking_backlog_says_when_it_clears() -> None:
    clock = FakeClock(START)
    # The last 30 runs left 150, 145, ... 5 due tasks: 5 fewer a minute, 5 left.
    BatchRun.objects.bulk_create(
        run_row(START + timedelta(minutes=minute, seconds=1), backlog=150 - 5 * minute, used=50)
        for minute in range(30)
    )
    clock.advance(1800)
    report = capacity_report(task_backends["default"], clock.now())
    [line] = report.lines
    assert not line.growing
    assert line.backlog_per_minute == pytest.approx(-5.0)
    assert line.minutes_to_clear == pytest.approx(1.0)
    assert "due tasks left 150 -> 5, clears in 1 min" in "\n".join(describe_capacity(report))


def test_due_tasks_and_no_run_in_the_window_ask_whether_runs_are_scheduled() -> None:
    for minutes in (50, 20, 5):
        due_task(START - timedelta(minutes=minutes))
    report = capacity_report(task_backends["default"], START)
    [advice] = report.recommendations
    assert advice.action == (
        "no run in the window while 3 tasks are due: check that run_due_tasks is scheduled "
        "(a crontab line or a systemd timer) and can start"
    )
    assert "No recommendation" not in "\n".join(describe_capacity(report))
    assert report.lines == []


def test_runs_that_all_found_the_lock_held_point_at_a_stuck_run() -> None:
    due_task(START - timedelta(minutes=30))
    BatchRun.objects.bulk_create(
        run_row(START - timedelta(minutes=minute), stop_reason="lock held", used=0.01)
        for minute in range(1, 60)
    )
    [advice] = capacity_report(task_backends["default"], START).recommendations
    assert advice.action.startswith("every run in the window found the lock held while 1 tasks")
    assert advice.figures == {"due now": 1, "lock held": 59}


def test_a_queue_no_line_takes_is_named() -> None:
    clock = FakeClock(START)
    history(
        clock,
        arrivals={"reports": 1},
        drained={"reports": 1},
        seconds={"reports": 1.0},
        line="reports",
    )
    due_task(clock.now() - timedelta(minutes=10), queue="emails")
    [advice] = capacity_report(task_backends["default"], clock.now()).recommendations
    assert advice.action == (
        "no run in the window took queue emails, where 1 tasks are due: add it to the --queue "
        "of a crontab line"
    )


def test_the_command_prints_the_report_and_its_json() -> None:
    # Half a minute inside the window, so that a slow database may take a while to get to the
    # command before its first minute falls out of the window.
    clock = FakeClock(datetime.now(UTC) - timedelta(minutes=60) + timedelta(seconds=30))
    history(
        clock,
        arrivals={"default": 12},
        drained={"default": 7},
        seconds={"default": 4.0},
        budget=30,
        used=30,
    )
    out = StringIO()
    call_command("cronrunner_status", "--capacity", stdout=out)
    text = out.getvalue()
    assert "queue default: 12.00 arrived/min, 7.00 drained/min, 300 due now\n" in text
    assert "due tasks left 5 -> 300, growing\n" in text
    assert "  - raise --max-seconds to 53 (" in text
    out = StringIO()
    call_command("cronrunner_status", "--capacity", "--json", "--window", "0.5", stdout=out)
    document = json.loads(out.getvalue())
    assert document["window_minutes"] == 30
    assert document["queues"][0]["arrival_per_minute"] == 12.0
    [line] = document["lines"]
    assert line["queues"] == "*" and line["growing"] is True and line["backlog"][-1] == 300
    assert document["recommendations"][0]["action"] == "raise --max-seconds to 53"
