"""run_due_tasks as a management command: options, validation, output, lock held."""

from __future__ import annotations

import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from cronrunner.lock import RunLock
from django_cronrunner.models import BatchRun, TaskRecord
from tests.testapp import tasks

pytestmark = pytest.mark.django_db(transaction=True)

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d run_due_tasks: ")


def run(tmp_path: Path, *args: str, verbosity: int = 1) -> list[str]:
    out = StringIO()
    call_command(
        "run_due_tasks",
        "--lock-file",
        str(tmp_path / "run.lock"),
        *args,
        stdout=out,
        verbosity=verbosity,
    )
    return out.getvalue().splitlines()


def test_summary_line_and_batch_log(tmp_path: Path) -> None:
    tasks.add.enqueue(1, 2)
    tasks.fail.enqueue("x")
    (line,) = run(tmp_path)
    assert LINE.match(line)
    assert line.endswith(
        "batch finished: 2 run (1 succeeded, 1 failed), 0 recovered, 0 scheduled, "
        f"in {line.split(' in ')[1].split('s of')[0]}s of a 50s budget; stopped: drained"
    )
    batch = BatchRun.objects.get()
    assert (batch.tasks_run, batch.succeeded, batch.failed, batch.max_seconds) == (2, 1, 1, 50)
    assert batch.stop_reason == "drained" and batch.queues == "*"


def test_verbosity_two_prints_a_line_per_task_without_arguments(tmp_path: Path) -> None:
    result = tasks.send_email.enqueue("secret@example.com")
    lines = run(tmp_path, verbosity=2)
    assert len(lines) == 2
    assert (
        lines[0]
        .split("run_due_tasks: ")[1]
        .startswith(f"task {result.id} tests.testapp.tasks.send_email SUCCESSFUL in ")
    )
    assert "secret@example.com" not in "\n".join(lines)


def test_verbosity_zero_is_silent(tmp_path: Path) -> None:
    tasks.add.enqueue(1, 2)
    assert run(tmp_path, verbosity=0) == []
    assert TaskRecord.objects.get().status == "SUCCESSFUL"


def test_queue_option_repeated_or_comma_separated(tmp_path: Path) -> None:
    email = tasks.send_email.enqueue("a@example.com")
    add = tasks.add.enqueue(1, 2)
    report = tasks.add.using(queue_name="reports").enqueue(1, 2)
    run(tmp_path, "--queue", "emails")
    assert [TaskRecord.objects.get(pk=r.id).status for r in (email, add, report)] == [
        "SUCCESSFUL",
        "READY",
        "READY",
    ]
    run(tmp_path, "--queue", "default,reports", "--queue", "emails")
    assert set(TaskRecord.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}
    assert BatchRun.objects.order_by("started_at").last().queues == "default,emails,reports"


def test_star_means_every_queue_and_max_tasks_limits(tmp_path: Path) -> None:
    for _ in range(3):
        tasks.send_email.enqueue("a@example.com")
    (line,) = run(tmp_path, "--queue", "*", "--max-tasks", "2")
    assert "2 run" in line and line.endswith("stopped: max tasks")


def test_lock_held_is_one_line_even_at_verbosity_zero(tmp_path: Path) -> None:
    tasks.add.enqueue(1, 2)
    with RunLock(tmp_path / "run.lock", started_at=timezone.now()):
        lines = run(tmp_path, verbosity=0)
    assert len(lines) == 1
    assert "batch skipped: Another run holds" in lines[0]
    assert TaskRecord.objects.get().status == "READY"
    assert BatchRun.objects.get().stop_reason == "lock held"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-seconds", "0"], "'0' must be a positive number of seconds"),
        (["--max-seconds", "-1"], "must be a positive number of seconds"),
        (["--max-seconds", "abc"], "'abc' is not a number of seconds"),
        (["--max-seconds", "inf"], "must be a positive number of seconds"),
        (["--max-tasks", "0"], "'0' must be at least 1"),
        (["--max-tasks", "x"], "'x' is not a whole number"),
        (["--concurrency", "0"], "'0' must be at least 1"),
        (["--concurrency", "two"], "'two' is not a whole number"),
        (["--poll", "0"], "'0' must be a positive number of seconds"),
        (["--poll", "soon"], "'soon' is not a number of seconds"),
        (["--queue", ""], "contains an empty queue name"),
        (["--queue", "a,,b"], "contains an empty queue name"),
        (["--backend", "nope"], "'nope' is not in TASKS"),
    ],
)
def test_invalid_arguments_are_refused_with_a_clear_message(
    tmp_path: Path, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        run(tmp_path, *args)


def test_a_backend_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    message = r"TASKS\['immediate'\] uses ImmediateBackend, not CronRunnerBackend"
    with pytest.raises(CommandError, match=message):
        run(tmp_path, "--backend", "immediate")


def test_a_missing_lock_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("run_due_tasks", "--lock-file", str(tmp_path / "no" / "run.lock"))


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_in_a_terminal_a_progress_line_updates_as_tasks_finish(tmp_path: Path) -> None:
    tasks.add.enqueue(1, 2)
    tasks.fail.enqueue("x")
    out = Terminal()
    call_command("run_due_tasks", "--lock-file", str(tmp_path / "run.lock"), stdout=out)
    text = out.getvalue()
    assert "\r\x1b[K1 run, 0 failed, " in text
    assert "\r\x1b[K2 run, 1 failed, " in text and "last: tests.testapp.tasks." in text
    # The line is cleared before the summary, which stays as the log line it always is.
    summary = text.rsplit("\r\x1b[K", 1)[1]
    assert LINE.match(summary) and "batch finished: 2 run" in summary


def test_under_cron_there_is_no_progress_line(tmp_path: Path) -> None:
    tasks.add.enqueue(1, 2)
    assert "\r" not in "\n".join(run(tmp_path))
