"""The admin: task results and their actions, the batch log, and the dashboard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from tests.testapp import tasks

pytestmark = pytest.mark.django_db

TASKS_URL = "/admin/django_cronrunner/taskrecord/"
BATCHES_URL = "/admin/django_cronrunner/batchrun/"


@pytest.fixture
def history() -> tuple[TaskRecord, TaskRecord, TaskRecord]:
    """Store one successful, one failed and one deferred task, and one batch."""
    ok = tasks.add.enqueue(2, 3)
    bad = tasks.fail.enqueue("broken <b>markup</b>")
    later = tasks.send_email.using(run_after=timezone.now() + timedelta(hours=1)).enqueue("x@y")
    run_due_tasks(max_seconds=30)
    return (
        TaskRecord.objects.get(pk=ok.id),
        TaskRecord.objects.get(pk=bad.id),
        TaskRecord.objects.get(pk=later.id),
    )


def test_task_changelist_lists_every_row_with_its_attempts(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    page = admin_client.get(TASKS_URL)
    assert page.status_code == 200
    content = page.content.decode()
    for record in history:
        assert str(record.pk) in content
    assert "tests.testapp.tasks.fail" in content and "tests.testapp.tasks.send_email" in content
    assert page.context["cl"].result_count == 3
    assert "Add task result" not in content


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=failed", ["tests.testapp.tasks.fail"]),
        ("status=deferred", ["tests.testapp.tasks.send_email"]),
        ("status=due", []),
        ("queue_name__exact=emails", ["tests.testapp.tasks.send_email"]),
        ("q=send_email", ["tests.testapp.tasks.send_email"]),
    ],
)
def test_task_changelist_filters_and_searches(
    admin_client: Client,
    history: tuple[TaskRecord, TaskRecord, TaskRecord],
    query: str,
    expected: list[str],
) -> None:
    page = admin_client.get(f"{TASKS_URL}?{query}")
    assert page.status_code == 200
    assert [record.task_path for record in page.context["cl"].result_list] == expected


def test_task_search_finds_a_row_by_its_id(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok = history[0]
    page = admin_client.get(TASKS_URL, {"q": str(ok.pk)})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [ok]


def test_task_detail_shows_the_outcome_read_only(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    _, bad, _ = history
    url = f"{TASKS_URL}{bad.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    content = page.content.decode()
    assert "View task result" in content
    assert "ValueError: broken &lt;b&gt;markup&lt;/b&gt;" in content  # escaped, never markup
    assert "<b>markup</b>" not in content
    assert 'name="_save"' not in content
    response = admin_client.post(url, {"status": "READY", "task_path": "os.system"})
    assert response.status_code == 403
    bad.refresh_from_db()
    assert (bad.status, bad.task_path) == ("FAILED", "tests.testapp.tasks.fail")


def test_tasks_cannot_be_added_from_the_admin(admin_client: Client) -> None:
    assert admin_client.get(f"{TASKS_URL}add/").status_code == 403
    response = admin_client.post(f"{TASKS_URL}add/", {"task_path": "os.system"})
    assert response.status_code == 403
    assert not TaskRecord.objects.exists()


def test_batch_changelist_and_detail_render_read_only(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    batch = BatchRun.objects.get()
    page = admin_client.get(BATCHES_URL)
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [batch]
    assert admin_client.get(f"{BATCHES_URL}?stop_reason__exact=drained").status_code == 200
    detail = admin_client.get(f"{BATCHES_URL}{batch.pk}/change/")
    assert detail.status_code == 200
    assert "View batch run" in detail.content.decode()
    assert admin_client.post(f"{BATCHES_URL}{batch.pk}/change/", {"tasks_run": 99}).status_code == (
        403
    )
    assert admin_client.get(f"{BATCHES_URL}add/").status_code == 403
    batch.refresh_from_db()
    assert batch.tasks_run == 2


def test_staff_without_permissions_sees_nothing(
    client: Client, django_user_model: type, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(TASKS_URL).status_code == 403
    assert client.get(f"{TASKS_URL}{history[0].pk}/change/").status_code == 403


def changelist_action(client: Client, action: str, *records: TaskRecord) -> Any:
    return client.post(
        TASKS_URL,
        {"action": action, "_selected_action": [str(record.pk) for record in records]},
        follow=True,
    )


def test_retry_failed_queues_only_failed_rows_again(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok, bad, later = history
    response = changelist_action(admin_client, "retry_failed", ok, bad, later)
    assert "1 task(s) queued again; 2 skipped" in response.content.decode()
    bad.refresh_from_db()
    assert (bad.status, bad.finished_at, len(bad.errors)) == ("READY", None, 1)
    assert bad.due_at <= timezone.now()
    ok.refresh_from_db()
    assert ok.status == "SUCCESSFUL"
    run_due_tasks(max_seconds=30)  # it really runs again (and fails again: it always does)
    bad.refresh_from_db()
    assert (bad.status, len(bad.errors), len(bad.worker_ids)) == ("FAILED", 2, 2)


def test_cancel_ready_fails_waiting_rows_with_who_cancelled(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok, _, later = history
    response = changelist_action(admin_client, "cancel_ready", ok, later)
    assert "1 task(s) cancelled or asked to stop; 1 skipped" in response.content.decode()
    later.refresh_from_db()
    assert later.status == "FAILED" and later.finished_at is not None
    (error,) = later.errors
    assert error["exception_class_path"] == "django_cronrunner.errors.TaskCancelled"
    assert "cancelled by admin in the admin" in error["traceback"]
    result = tasks.send_email.get_result(str(later.pk))
    assert result.errors[0].exception_class_path.endswith("TaskCancelled")


def test_run_now_makes_a_deferred_row_due(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    _, _, later = history
    changelist_action(admin_client, "run_now", later)
    later.refresh_from_db()
    assert later.due_at <= timezone.now() and later.run_after is None
    assert run_due_tasks(max_seconds=30).succeeded == 1


def test_actions_never_touch_a_running_row(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    _, bad, later = history
    TaskRecord.objects.filter(pk__in=[bad.pk, later.pk]).update(
        status="RUNNING", claimed_by="host:1:run"
    )
    for action in ("retry_failed", "cancel_ready", "run_now"):
        changelist_action(admin_client, action, bad, later)
    # Django's delete confirmation, then the confirmed delete.
    page = changelist_action(admin_client, "delete_selected", bad, later)
    assert "2 running task(s) are kept" in page.content.decode()
    admin_client.post(
        TASKS_URL,
        {"action": "delete_selected", "post": "yes", "_selected_action": [bad.pk, later.pk]},
    )
    assert set(
        TaskRecord.objects.filter(pk__in=[bad.pk, later.pk]).values_list("status", flat=True)
    ) == {"RUNNING"}
    assert admin_client.get(f"{TASKS_URL}{bad.pk}/delete/").status_code == 403


def test_delete_removes_finished_rows_after_confirmation(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok, bad, _ = history
    confirm = changelist_action(admin_client, "delete_selected", ok, bad)
    assert "Are you sure" in confirm.content.decode()
    assert TaskRecord.objects.count() == 3
    admin_client.post(
        TASKS_URL, {"action": "delete_selected", "post": "yes", "_selected_action": [ok.pk, bad.pk]}
    )
    assert list(TaskRecord.objects.values_list("pk", flat=True)) == [history[2].pk]


def test_actions_need_the_change_permission(
    client: Client, django_user_model: Any, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    client.force_login(viewer)
    page = client.get(TASKS_URL)
    assert page.status_code == 200
    assert page.context["action_form"] is None  # no action at all without change or delete
    _, bad, _ = history
    changelist_action(client, "retry_failed", bad)
    bad.refresh_from_db()
    assert bad.status == "FAILED"


def test_task_detail_shows_arguments_and_each_attempt(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok, bad, _ = history
    content = admin_client.get(f"{TASKS_URL}{ok.pk}/change/").content.decode()
    assert "args = [\n  2,\n  3\n]" in content and "<pre>5</pre>" in content
    content = admin_client.get(f"{TASKS_URL}{bad.pk}/change/").content.decode()
    assert "builtins.ValueError" in content and bad.worker_ids[0] in content


DASHBOARD_URL = "/admin/django_cronrunner/dashboard/"


def test_the_dashboard_is_linked_from_the_admin_index(admin_client: Client) -> None:
    assert DASHBOARD_URL in admin_client.get("/admin/").content.decode()


def test_the_dashboard_needs_a_staff_login(client: Client) -> None:
    response = client.get(DASHBOARD_URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_dashboard_draws_one_bar_per_batch_and_says_when_runs_stopped(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    for minutes in (30, 20):
        batch = BatchRun.objects.get(pk=BatchRun.objects.first().pk)  # type: ignore[union-attr]
        batch.pk = None
        batch.started_at = batch.finished_at = timezone.now() - timedelta(minutes=minutes)
        batch.save()
    BatchRun.objects.create(
        **{**model_fields(BatchRun.objects.first()), "stop_reason": "lock held"}
    )
    page = admin_client.get(DASHBOARD_URL)
    content = page.content.decode()
    assert page.status_code == 200
    # The run just made, and the two copies: lock-held skips are not batches of work.
    assert content.count('class="cr-bar"') == 3  # one minute's bucket each
    (board,) = page.context["boards"]
    assert f"Batches in the {board['window'].label}: 3" in content
    assert "no batch has run for" not in content
    assert f"Failures in the {board['window'].label}: 1" in content
    assert "tests.testapp.tasks.fail" in content
    # Twenty seconds past the minute: the database's time a process carries may lag a little.
    BatchRun.objects.update(finished_at=timezone.now() - timedelta(minutes=9, seconds=20))
    assert "no batch has run for 9 minutes" in admin_client.get(DASHBOARD_URL).content.decode()


def model_fields(batch: BatchRun | None) -> dict[str, Any]:
    assert batch is not None
    return {
        field.name: getattr(batch, field.name)
        for field in BatchRun._meta.concrete_fields
        if field.name != "id"
    }


def test_the_list_shows_short_ids_badges_and_counts_per_status(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok = history[0]
    page = admin_client.get(TASKS_URL)
    content = page.content.decode()
    short = str(ok.pk)[-8:]
    assert f'<code title="{ok.pk}">{short}</code>' in content
    assert '<span class="cr-badge cr-failed">Failed</span>' in content
    assert '<span class="cr-badge cr-deferred">Deferred</span>' in content
    counts = {entry["key"]: entry["count"] for entry in page.context["status_counts"]}
    assert counts == {"due": 0, "deferred": 1, "running": 0, "successful": 1, "failed": 1}
    # What the list shows of an id finds the row.
    found = admin_client.get(TASKS_URL, {"q": short})
    assert list(found.context["cl"].result_list) == [ok]


def test_each_count_links_to_exactly_its_rows(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    later = history[2]
    due = tasks.add.enqueue(7, 7)  # ready, due now
    page = admin_client.get(TASKS_URL)
    by_key = {entry["key"]: entry for entry in page.context["status_counts"]}
    assert by_key["due"]["url"] != by_key["deferred"]["url"]
    for key, expected in (("due", [due.id]), ("deferred", [str(later.pk)])):
        listed = admin_client.get(by_key[key]["url"])
        assert [str(record.pk) for record in listed.context["cl"].result_list] == expected
        assert by_key[key]["count"] == len(expected)
        badge = f'<span class="cr-badge cr-{key}">{key.title()}</span>'
        assert badge in listed.content.decode()


def filter_choices(page: Any, title: str) -> list[str] | None:
    for spec in page.context["cl"].filter_specs:
        if spec.title == title and spec.has_output():
            return [choice["display"] for choice in spec.choices(page.context["cl"])]
    return None


def test_filters_offer_only_values_the_rows_have(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    page = admin_client.get(TASKS_URL)
    assert filter_choices(page, "status") == ["All", "Deferred", "Successful", "Failed"]
    assert filter_choices(page, "schedule name") is None  # no lone "-"
    assert filter_choices(page, "backend name") is None  # one backend: nothing to filter
    assert filter_choices(page, "failed with") == ["All", "ValueError"]
    TaskRecord.objects.filter(pk=history[0].pk).update(schedule_name="nightly")
    page = admin_client.get(TASKS_URL)
    assert filter_choices(page, "schedule name") == ["All", "nightly"]
    failed = admin_client.get(TASKS_URL, {"error": "builtins.ValueError"})
    assert list(failed.context["cl"].result_list) == [history[1]]
    assert admin_client.get(TASKS_URL, {"error": "builtins.KeyError"}).context[
        "cl"
    ].result_count == (0)


def test_a_task_page_shows_its_timeline_attempts_and_buttons(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    ok, bad, later = history
    page = admin_client.get(f"{TASKS_URL}{bad.pk}/change/")
    assert [operation.name for operation in page.context["buttons"]] == ["retry"]
    labels = [event.label for event in page.context["events"]]
    assert labels[0] == "enqueued" and labels[-1] == "finished failed"
    assert any(label.startswith("attempt 1 started by ") for label in labels)
    assert "attempt 1 failed: ValueError" in labels
    (row,) = page.context["attempt_rows"]
    assert (row.number, row.outcome, row.worker_id) == (1, "FAILED", bad.worker_ids[0])
    assert row.exception_class_path == "builtins.ValueError" and row.duration is not None
    content = page.content.decode()
    assert f'action="{TASKS_URL}{bad.pk}/do/retry/"' in content
    admin_client.post(f"{TASKS_URL}{bad.pk}/do/retry/")
    retried = admin_client.get(f"{TASKS_URL}{bad.pk}/change/")
    assert "due again" in [event.label for event in retried.context["events"]]
    deferred = admin_client.get(f"{TASKS_URL}{later.pk}/change/")
    assert [operation.name for operation in deferred.context["buttons"]] == ["cancel", "run_now"]
    assert admin_client.get(f"{TASKS_URL}{ok.pk}/change/").context["buttons"] == []
    # A running task's page shows the claim its run holds.
    TaskRecord.objects.filter(pk=later.pk).update(
        status="RUNNING", claimed_by="host:1:abc", claimed_at=later.enqueued_at
    )
    running = admin_client.get(f"{TASKS_URL}{later.pk}/change/")
    assert "claimed by host:1:abc" in [event.label for event in running.context["events"]]


def test_the_buttons_post_to_the_same_operations_as_the_actions(
    admin_client: Client, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    _, bad, later = history
    assert admin_client.get(f"{TASKS_URL}{bad.pk}/do/retry/").status_code == 405
    response = admin_client.post(f"{TASKS_URL}{bad.pk}/do/retry/", follow=True)
    assert "1 task(s) queued again." in response.content.decode()
    bad.refresh_from_db()
    assert bad.status == "READY"
    # Pressed again (a second tab): nothing changes, and the message says why.
    again = admin_client.post(f"{TASKS_URL}{bad.pk}/do/retry/", follow=True)
    assert "0 task(s) queued again; 1 skipped: they were not failed" in again.content.decode()
    admin_client.post(f"{TASKS_URL}{later.pk}/do/cancel/")
    later.refresh_from_db()
    assert later.status == "FAILED"
    assert "cancelled by admin in the admin" in later.errors[0]["traceback"]
    assert admin_client.post(f"{TASKS_URL}{later.pk}/do/explode/").status_code == 403


def test_the_buttons_need_the_change_permission_and_a_csrf_token(
    client: Client, django_user_model: Any, history: tuple[TaskRecord, TaskRecord, TaskRecord]
) -> None:
    _, bad, _ = history
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_taskrecord"))
    client.force_login(viewer)
    assert client.get(f"{TASKS_URL}{bad.pk}/change/").context["buttons"] == []
    assert client.post(f"{TASKS_URL}{bad.pk}/do/retry/").status_code == 403
    boss = django_user_model.objects.create_superuser("boss", "b@example.com", "pw")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(boss)
    assert strict.post(f"{TASKS_URL}{bad.pk}/do/retry/").status_code == 403
    bad.refresh_from_db()
    assert bad.status == "FAILED"


def test_invalid_schedules_are_shown_as_problems(
    admin_client: Client, settings: Any, tmp_path: Any
) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "schedules": {"broken": {"task": "tests.testapp.tasks.add", "cron": "every day"}},
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    page = admin_client.get("/admin/django_cronrunner/schedulestate/")
    (problem,) = page.context["schedule_problems"]
    assert problem.startswith("Backend 'default': Schedule 'broken'")
    assert "It fires nothing until it is fixed." in page.content.decode()


def test_dashboard_breadcrumbs_use_the_markup_this_django_styles(admin_client: Client) -> None:
    import django

    content = admin_client.get(DASHBOARD_URL).content.decode()
    if django.VERSION >= (6, 1):
        assert '<ol class="breadcrumbs">' in content and '<li aria-current="page">Dashboard' in (
            content
        )
    else:
        assert '<div class="breadcrumbs">' in content
