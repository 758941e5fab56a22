"""The admin pages for stored tasks and the batch log: they render and change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
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
