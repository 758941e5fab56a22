"""The admin: task results and their actions, the batch log, and the dashboard."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.runner import run_due_tasks
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
        ("status__exact=FAILED", ["tests.testapp.tasks.fail"]),
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
    assert "1 task(s) cancelled; 1 skipped" in response.content.decode()
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
    assert content.count("<rect ") == 3
    assert "Batches in the last 24 hours: 3" in content
    assert "no batch has run for" not in content
    assert "Failures in the last 24 hours: 1" in content and "tests.testapp.tasks.fail" in content
    BatchRun.objects.update(finished_at=timezone.now() - timedelta(minutes=9))
    assert "no batch has run for 9 minutes" in admin_client.get(DASHBOARD_URL).content.decode()


def model_fields(batch: BatchRun | None) -> dict[str, Any]:
    assert batch is not None
    return {
        field.name: getattr(batch, field.name)
        for field in BatchRun._meta.concrete_fields
        if field.name != "id"
    }
