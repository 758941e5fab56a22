"""The dashboard's measures: its window, wait percentiles, throughput, failure groups, chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.web.dashboard import WIDEST_BAR, batch_chart
from django_cronrunner.web.dashboard_metrics import (
    WINDOWS,
    batch_buckets,
    choose_window,
    failure_groups,
    percentile,
    queue_flow,
)
from tests.django_cronrunner.rows import batch_row
from tests.testapp import tasks

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DASHBOARD_URL = "/admin/django_cronrunner/dashboard/"


@pytest.mark.parametrize(
    ("age", "expected", "span"),
    [
        (None, "hour", timedelta(hours=1)),
        (timedelta(seconds=20), "recent", timedelta(minutes=5)),
        (timedelta(minutes=3), "recent", timedelta(minutes=5)),
        (timedelta(minutes=12), "recent", timedelta(minutes=15)),
        (timedelta(minutes=55), "recent", timedelta(minutes=55)),
        (timedelta(minutes=56), "hour", timedelta(hours=1)),
        (timedelta(minutes=60), "hour", timedelta(hours=1)),
        (timedelta(minutes=61), "day", timedelta(days=1)),
        (timedelta(hours=24), "day", timedelta(days=1)),
        (timedelta(hours=25), "week", timedelta(days=7)),
        (timedelta(days=30), "week", timedelta(days=7)),
    ],
)
def test_the_window_is_the_smallest_that_holds_the_history(
    age: timedelta | None, expected: str, span: timedelta
) -> None:
    oldest = None if age is None else NOW - age
    window = choose_window(oldest, NOW)
    assert (window.name, window.span) == (expected, span)


def test_a_few_minutes_of_history_get_a_window_of_a_few_minutes() -> None:
    window = choose_window(NOW - timedelta(minutes=3), NOW)
    assert (window.label, window.start_label, window.buckets) == (
        "last 5 minutes",
        "5 minutes ago",
        5,
    )


def test_a_window_asked_for_wins_and_an_unknown_one_is_ignored() -> None:
    assert choose_window(NOW - timedelta(minutes=1), NOW, "week").name == "week"
    assert choose_window(NOW - timedelta(minutes=1), NOW, "fortnight").name == "recent"


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]  # 1 .. 100
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) is None


def stored(queue: str, due_ago: float, waited: float, status: str = "SUCCESSFUL") -> TaskRecord:
    """A finished task that was due `due_ago` seconds ago and started `waited` seconds later."""
    due = NOW - timedelta(seconds=due_ago)
    started = due + timedelta(seconds=waited)
    return TaskRecord.objects.create(
        backend_name="default",
        task_path="tests.testapp.tasks.add",
        queue_name=queue,
        status=status,
        due_at=due,
        enqueued_at=due,
        started_at=started,
        last_attempted_at=started,
        finished_at=started + timedelta(seconds=1),
        worker_ids=["h:1:a"],
    )


@pytest.mark.django_db
def test_wait_percentiles_and_throughput_per_queue() -> None:
    for n in range(1, 21):  # waits of 1 .. 20 s in the default queue
        stored("default", due_ago=600, waited=n)
    stored("emails", due_ago=300, waited=0.5)
    stored("emails", due_ago=300, waited=2.5, status="FAILED")
    stored("emails", due_ago=7200, waited=99)  # before the window: not counted
    window = WINDOWS["hour"]
    flows = queue_flow(TaskRecord.objects.all(), NOW - window.span, window.span)
    by_queue = {flow.queue_name: flow for flow in flows}
    assert set(by_queue) == {"default", "emails"}
    default, emails = by_queue["default"], by_queue["emails"]
    assert (default.finished, default.failed, default.per_hour) == (20, 0, 20.0)
    assert (default.wait_p50, default.wait_p95, default.sampled) == (10.0, 19.0, 20)
    assert (emails.finished, emails.failed) == (2, 1)
    assert (emails.wait_p50, emails.wait_p95) == (0.5, 2.5)


@pytest.mark.django_db
def test_failures_are_grouped_by_path_and_last_exception_class() -> None:
    def failed(path: str, *classes: str) -> None:
        record = stored("default", due_ago=60, waited=1, status="FAILED")
        record.task_path = path
        record.errors = [{"exception_class_path": c, "traceback": ""} for c in classes]
        record.save()

    failed("shop.tasks.charge", "builtins.ValueError")
    failed("shop.tasks.charge", "builtins.KeyError", "builtins.ValueError")
    failed("shop.tasks.charge", "builtins.ValueError", "builtins.KeyError")
    failed("shop.tasks.mail", "smtplib.SMTPException")
    failed("shop.tasks.mail")  # no error recorded: grouped apart, without a class
    groups = failure_groups(TaskRecord.objects.all(), NOW - timedelta(hours=1))
    assert [(g.task_path, g.exception_class_path, g.count) for g in groups] == [
        ("shop.tasks.charge", "builtins.ValueError", 2),
        ("shop.tasks.charge", "builtins.KeyError", 1),
        ("shop.tasks.mail", "", 1),
        ("shop.tasks.mail", "smtplib.SMTPException", 1),
    ]


@pytest.mark.django_db
def test_batches_are_summed_into_the_buckets_of_the_window() -> None:
    for minutes, tasks_run in ((50, 3), (50, 4), (10, 5)):
        batch_row(NOW - timedelta(minutes=minutes), tasks_run=tasks_run, failed=1)
    batch_row(NOW - timedelta(hours=3), tasks_run=99)  # outside the hour
    window = WINDOWS["hour"]
    buckets = batch_buckets(BatchRun.objects.all(), window, NOW)
    assert len(buckets) == 60
    busy = [(n, b.batches, b.tasks_run, b.failed) for n, b in enumerate(buckets) if b.batches]
    # batch_row makes 3-second batches that end at the time given: they start 3 s earlier.
    assert busy == [(9, 2, 7, 2), (49, 1, 5, 1)]
    chart = batch_chart(buckets, window)
    assert len(chart.bars) == 2 and chart.most_tasks == 7
    assert chart.bars[0].height == chart.height  # the busiest bucket is full height
    assert chart.bars[0].x < chart.bars[1].x
    slot = chart.width / len(buckets)
    for bar, bucket in zip(chart.bars, (9, 49), strict=True):
        # Each bar stands in the middle of its bucket's slot, and its dot on its middle.
        assert bar.x + bar.width / 2 == pytest.approx((bucket + 0.5) * slot, abs=0.01)
        assert bar.dot_x == pytest.approx(bar.x + bar.width / 2, abs=0.01)
    few = batch_chart(batch_buckets(BatchRun.objects.all(), WINDOWS["hour"], NOW)[:5], window)
    assert all(bar.width <= WIDEST_BAR for bar in few.bars)  # five buckets: bars, not blocks


@pytest.mark.django_db
def test_the_dashboard_page_shows_flow_failures_and_schedules(admin_client: Client) -> None:
    tasks.add.enqueue(1, 2)
    old = tasks.fail.enqueue("before the window")
    tasks.fail.enqueue("boom")
    tasks.send_email.enqueue("a@b")
    run_due_tasks(max_seconds=30)
    long_ago = timezone.now() - timedelta(days=2)
    TaskRecord.objects.filter(pk=old.id).update(finished_at=long_ago)
    page = admin_client.get(DASHBOARD_URL)
    assert page.status_code == 200
    (board,) = page.context["boards"]
    assert board["window"].name == "recent"
    assert {row["name"] for row in board["queue_rows"]} == {"default", "emails"}
    (group,) = board["failure_rows"]
    assert group["exception_class_path"] == "builtins.ValueError"
    content = page.content.decode()
    link = f"?{group['query']}".replace("&", "&amp;")
    assert link in content
    # The link shows exactly that group's tasks: not the failure of two days ago.
    listed = admin_client.get(f"/admin/django_cronrunner/taskrecord/?{group['query']}")
    assert [r.pk for r in listed.context["cl"].result_list] == [
        r.pk for r in TaskRecord.objects.failed().exclude(pk=old.id)
    ]
    assert group["count"] == 1
    assert 'id="cronrunner-refresh"' in content and 'data-seconds="30"' in content
    assert admin_client.get(f"{DASHBOARD_URL}?window=week").context["boards"][0]["window"].name == (
        "week"
    )
    assert 'data-seconds="5"' in admin_client.get(f"{DASHBOARD_URL}?refresh=5").content.decode()


@pytest.mark.django_db
def test_the_dashboard_window_grows_with_the_history(admin_client: Client) -> None:
    batch_row(timezone.now() - timedelta(hours=5))
    (board,) = admin_client.get(DASHBOARD_URL).context["boards"]
    assert board["window"].name == "day" and board["batches"] == 1
    assert "Batches in the last 24 hours: 1" in admin_client.get(DASHBOARD_URL).content.decode()


@pytest.mark.django_db
def test_the_dashboard_costs_the_same_queries_for_more_rows(admin_client: Client) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert admin_client.get(DASHBOARD_URL).status_code == 200
        # Not the read of the database's clock, which a process renews once a minute whenever
        # a page happens to ask for the time.
        return sum(
            "clock_timestamp()" not in query["sql"] and "UTC_TIMESTAMP(6)" not in query["sql"]
            for query in captured.captured_queries
        )

    tasks.fail.enqueue("one")
    run_due_tasks(max_seconds=30)
    few = queries()
    for n in range(20):
        tasks.fail.enqueue(f"boom {n}")
        tasks.add.enqueue(n, n)
    run_due_tasks(max_seconds=30)
    assert queries() == few


def test_the_dashboard_gives_the_capacity_advice(admin_client: Client) -> None:
    from cronrunner.clock import FakeClock
    from tests.django_cronrunner.test_capacity import history

    assert "No recommendation: the runs keep up" in admin_client.get(DASHBOARD_URL).content.decode()
    # Twelve tasks arrive a minute and seven are drained by runs that spend their whole budget.
    clock = FakeClock(datetime.now(UTC) - timedelta(minutes=60) + timedelta(seconds=30))
    history(
        clock,
        arrivals={"default": 12},
        drained={"default": 7},
        seconds={"default": 4.0},
        budget=30,
        used=30,
    )
    page = admin_client.get(DASHBOARD_URL).content.decode()
    assert "<strong>raise --max-seconds to 53</strong>" in page
    assert "No recommendation" not in page


@pytest.mark.django_db
def test_a_failure_group_without_an_error_links_to_its_tasks_alone(admin_client: Client) -> None:
    tasks.fail.enqueue("boom")
    run_due_tasks(max_seconds=30)
    silent = stored("default", due_ago=60, waited=1, status="FAILED")
    TaskRecord.objects.filter(pk=silent.pk).update(
        task_path="tests.testapp.tasks.fail", finished_at=timezone.now(), errors=[]
    )
    (board,) = admin_client.get(DASHBOARD_URL).context["boards"]
    queries = {row["exception_class_path"]: row["query"] for row in board["failure_rows"]}
    assert set(queries) == {"builtins.ValueError", ""}
    listed = admin_client.get(f"/admin/django_cronrunner/taskrecord/?{queries['']}")
    assert [r.pk for r in listed.context["cl"].result_list] == [silent.pk]
