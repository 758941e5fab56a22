"""The schedules admin: who may pause a schedule, and how its slots and state are shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from django_cronrunner.models import ScheduleState
from django_cronrunner.operations.status import local_and_utc

pytestmark = pytest.mark.django_db

SCHEDULES_URL = "/admin/django_cronrunner/schedulestate/"


@pytest.fixture
def schedule_row() -> ScheduleState:
    now = timezone.now()
    return ScheduleState.objects.create(
        name="nightly",
        backend_name="default",
        expression="30 2 * * *",
        timezone="UTC",
        checked_until=now,
        created_at=now,
    )


def pause_action(client: Client, action: str, row: ScheduleState) -> bool:
    client.post(SCHEDULES_URL, {"action": action, "_selected_action": [row.pk], "index": 0})
    row.refresh_from_db()
    return row.paused


def test_pausing_a_schedule_needs_the_change_permission(
    client: Client, django_user_model: Any, schedule_row: ScheduleState
) -> None:
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_schedulestate"))
    client.force_login(viewer)
    page = client.get(SCHEDULES_URL)
    assert page.status_code == 200 and page.context["action_form"] is None
    assert pause_action(client, "pause", schedule_row) is False
    viewer.user_permissions.add(Permission.objects.get(codename="change_schedulestate"))
    viewer = django_user_model.objects.get(pk=viewer.pk)  # a fresh permission cache
    client.force_login(viewer)
    choices = [
        name
        for name, _ in client.get(SCHEDULES_URL).context["action_form"].fields["action"].choices
    ]
    assert "pause" in choices and "resume" in choices
    assert pause_action(client, "pause", schedule_row) is True
    assert pause_action(client, "resume", schedule_row) is False
    # Still no edit form: the row is written by runs.
    assert client.post(
        f"{SCHEDULES_URL}{schedule_row.pk}/change/", {"paused": True}
    ).status_code == (403)


def test_the_schedule_list_shows_a_state_not_a_red_cross(
    admin_client: Client, schedule_row: ScheduleState
) -> None:
    content = admin_client.get(SCHEDULES_URL).content.decode()
    assert "icon-no.svg" not in content and "icon-yes.svg" not in content
    # Not declared in TASKS: its state says so, in words.
    assert "not declared any more" in content


def test_a_slot_in_utc_is_not_shown_twice() -> None:
    slot = datetime(2026, 12, 6, 18, 55, tzinfo=UTC)
    assert local_and_utc(slot, "UTC") == "2026-12-06 18:55 UTC"
    assert local_and_utc(slot, "America/New_York") == "2026-12-06 13:55 EST (18:55 UTC)"
    assert local_and_utc(slot, "Europe/London") == "2026-12-06 18:55 GMT (18:55 UTC)"
