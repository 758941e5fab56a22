"""Background signal receivers: a task per signal, run later by run_due_tasks with its arguments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.management import call_command
from django.core.signals import request_finished
from django.db import transaction
from django.db.models.signals import m2m_changed, post_migrate, pre_delete, pre_save
from django.dispatch import Signal

from django_cronrunner.compat import task_enqueued
from django_cronrunner.errors import ReceiverArgumentError, ReceiverError
from django_cronrunner.models import TaskRecord
from django_cronrunner.receivers import REGISTRY, background_receiver, receiver_path
from tests.signalapp.models import DeletionEntry, IndexEntry, Page, Tag, TagChange
from tests.signalapp.receivers import page_published

pytestmark = pytest.mark.django_db(transaction=True)

RECEIVER_TASK = "django_cronrunner.receivers.run_background_receiver"


def receiver_tasks() -> list[TaskRecord]:
    return list(TaskRecord.objects.filter(task_path=RECEIVER_TASK).order_by("enqueued_at"))


def run_tasks() -> None:
    call_command("run_due_tasks", "--max-seconds", "30", verbosity=0)


def test_each_save_enqueues_one_task_and_nothing_runs_until_the_runner() -> None:
    page = Page.objects.create(title="Draft")
    page.title = "Published"
    page.save(update_fields=["title"])
    tasks = receiver_tasks()
    assert len(tasks) == 2
    assert [task.kwargs["payload"]["receiver"] for task in tasks] == [
        "tests.signalapp.receivers.reindex_page"
    ] * 2
    assert IndexEntry.objects.count() == 0
    run_tasks()
    entries = list(
        IndexEntry.objects.order_by("pk").values_list("title", "created", "update_fields")
    )
    # Instances are fetched again when the task runs: both runs see the saved state.
    assert entries == [("Published", True, None), ("Published", False, ["title"])]
    assert all(entry.sender == "signalapp.Page" for entry in IndexEntry.objects.all())
    assert all(entry.signal_is_post_save for entry in IndexEntry.objects.all())
    assert {task.status for task in TaskRecord.objects.all()} == {"SUCCESSFUL"}


def test_a_rolled_back_save_enqueues_nothing() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        Page.objects.create(title="Never")
        raise RuntimeError("roll back")
    assert receiver_tasks() == []
    with transaction.atomic():
        Page.objects.create(title="Kept")
        with pytest.raises(RuntimeError), transaction.atomic():
            Page.objects.create(title="Savepoint rolled back")
            raise RuntimeError("roll back the savepoint only")
    assert len(receiver_tasks()) == 1
    run_tasks()
    assert list(IndexEntry.objects.values_list("title", flat=True)) == ["Kept"]


def test_enqueued_signal_is_sent_only_once_the_transaction_commits() -> None:
    seen: list[str] = []

    def remember(sender: Any, task_result: Any, **kwargs: Any) -> None:
        seen.append(task_result.task.name)

    task_enqueued.connect(remember)
    try:
        with transaction.atomic():
            Page.objects.create(title="In a transaction")
            in_transaction = list(seen)
        assert in_transaction == ["run_background_receiver"]
    finally:
        task_enqueued.disconnect(remember)


def test_post_delete_gets_the_instance_as_it_was() -> None:
    page = Page.objects.create(
        title="Old news", published_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    )
    page_pk = page.pk
    page.delete()
    deletion = TaskRecord.objects.get(
        kwargs__payload__receiver="tests.signalapp.receivers.forget_page"
    )
    assert (deletion.queue_name, deletion.priority) == ("emails", 5)
    run_tasks()
    entry = DeletionEntry.objects.get()
    assert (entry.page_pk, entry.title) == (page_pk, "Old news")
    assert entry.published_at == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert entry.still_in_database is False
    assert entry.origin == f"instance {page_pk}"


def test_bulk_delete_origin_arrives_as_the_model() -> None:
    Page.objects.create(title="One")
    Page.objects.all().delete()
    run_tasks()
    assert DeletionEntry.objects.get().origin == "model signalapp.Page"


def test_instance_deleted_before_the_task_runs_fails_clearly() -> None:
    page = Page.objects.create(title="Short-lived")
    Page.objects.filter(pk=page.pk).delete()  # a queryset delete of a row sends post_delete too
    run_tasks()
    save_task = TaskRecord.objects.get(
        kwargs__payload__receiver="tests.signalapp.receivers.reindex_page"
    )
    assert save_task.status == "FAILED"
    assert (
        f"argument 'instance', Page with pk {page.pk}, no longer exists"
        in (save_task.errors[-1]["traceback"])
    )
    assert IndexEntry.objects.count() == 0


def test_sets_travel_as_sets() -> None:
    page = Page.objects.create(title="Tagged")
    tags = [Tag.objects.create(name=name) for name in ("a", "b")]
    page.tags.add(*tags)
    run_tasks()
    changes = list(TagChange.objects.order_by("pk").values_list("action", "tag_pks", "model"))
    assert changes == [
        ("pre_add", sorted(tag.pk for tag in tags), "signalapp.Tag"),
        ("post_add", sorted(tag.pk for tag in tags), "signalapp.Tag"),
    ]


def test_custom_signal_with_json_values_and_an_async_receiver() -> None:
    page = Page.objects.create(title="News")
    page_published.send(sender=Page, page=page, channels=["rss", "mastodon"])
    run_tasks()
    assert IndexEntry.objects.filter(sender="announce").get().title == "announced on rss,mastodon"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "argument 'channels' of type object"),
        ({"__model__": "x"}, "reserved key"),
        ([{1, 2}], "argument 'channels' of type set"),
        (Page(title="unsaved"), "an unsaved Page with no primary key"),
    ],
)
def test_arguments_that_cannot_travel_are_refused_at_send_time(value: Any, message: str) -> None:
    page = Page.objects.create(title="News")
    before = len(receiver_tasks())
    with pytest.raises(ReceiverArgumentError, match=message):
        page_published.send(sender=Page, page=page, channels=value)
    assert len(receiver_tasks()) == before


def test_error_names_the_receiver_and_the_argument() -> None:
    page = Page.objects.create(title="News")
    with pytest.raises(ReceiverArgumentError) as caught:
        page_published.send(sender=Page, page=page, channels=object())
    assert str(caught.value).startswith(
        "Background receiver tests.signalapp.receivers.announce was sent argument 'channels'"
    )


@pytest.mark.parametrize(
    ("signal", "name"),
    [
        (pre_save, "pre_save"),
        (pre_delete, "pre_delete"),
        (post_migrate, "post_migrate"),
        (request_finished, "request_finished"),
        (task_enqueued, "task_enqueued"),
    ],
)
def test_synchronous_signals_are_refused_at_connect_time(signal: Signal, name: str) -> None:
    with pytest.raises(ReceiverError, match=f"^{name} can only have ordinary receivers"):

        @background_receiver(signal)
        def handler(sender: Any, **kwargs: Any) -> None:
            pass


def test_receivers_that_cannot_be_imported_by_name_are_refused() -> None:
    def nested(sender: Any, **kwargs: Any) -> None:
        pass

    with pytest.raises(ReceiverError, match="must be a module-level function"):
        background_receiver(m2m_changed)(nested)
    with pytest.raises(ReceiverError, match="must be a module-level function"):
        background_receiver(m2m_changed)(lambda sender, **kwargs: None)
    with pytest.raises(ReceiverError, match="is not a function"):
        background_receiver(m2m_changed)(print)
    assert receiver_path(run_tasks) == "tests.django_cronrunner.test_receivers.run_tasks"


def test_a_stored_row_can_only_call_registered_receivers() -> None:
    Page.objects.create(title="x")
    record = receiver_tasks()[0]
    record.kwargs = {"payload": {**record.kwargs["payload"], "receiver": "os.system"}}
    record.save()
    run_tasks()
    record.refresh_from_db()
    assert record.status == "FAILED"
    assert (
        "'os.system' is not a registered background receiver; it was not called"
        in (record.errors[-1]["traceback"])
    )
    assert "os.system" not in REGISTRY


def test_tasks_in_another_database_are_enqueued_on_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    # As when the task backend's `database` option names another DATABASES alias.
    monkeypatch.setattr("django_cronrunner.receivers._task_database", lambda alias: "tasks-db")
    with transaction.atomic():
        Page.objects.create(title="Committed")
        assert receiver_tasks() == []
    assert len(receiver_tasks()) == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        Page.objects.create(title="Rolled back")
        raise RuntimeError("roll back")
    assert len(receiver_tasks()) == 1
