"""cronrunner_status --schedules: next fire times, DST changes ahead, invalid schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings

from django_cronrunner.compat import task_backends
from django_cronrunner.operations.preview import MAX_FIRES, schedule_previews

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def schedules(settings: Settings, tmp_path: Path) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "schedules": {
            "nightly": {
                "task": "tests.testapp.tasks.add",
                "cron": "30 2 * * *",
                "timezone": "America/New_York",
                "args": [1, 2],
            },
            "quarterly": {
                "task": "tests.testapp.tasks.add",
                "cron": "*/15 * * * *",
                "args": [1, 2],
            },
            "broken": {"task": "tests.testapp.tasks.add", "cron": "every day"},
        },
    }
    settings.TASKS = {**settings.TASKS, "default": default}


def test_each_schedule_lists_its_fire_times_and_dst_days() -> None:
    broken, nightly, quarterly = schedule_previews(task_backends["default"], NOW, days=3)
    assert broken.problem is not None and "every day" in broken.problem
    assert nightly.fires == [datetime(2026, 12, day, 7, 30, tzinfo=UTC) for day in (2, 3, 4)]
    assert not nightly.more
    [spring] = nightly.dst
    assert spring["description"] == (
        "2027-03-14: the clock jumps from 02:00 to 03:00, so 02:30 does not exist: "
        "fires once at 03:00 EDT (the first instant after)"
    )
    assert (spring["date"], spring["kind"], spring["affected_slots"], spring["action"]) == (
        "2027-03-14",
        "skipped",
        1,
        "fires_once_after_gap",
    )
    assert len(quarterly.fires) == MAX_FIRES and quarterly.more
    assert quarterly.dst == []  # UTC has no daylight saving


def test_the_command_shows_local_and_utc_and_exits_1_on_an_invalid_schedule() -> None:
    out = StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("cronrunner_status", "--schedules", "--days", "2", stdout=out)
    assert exit_.value.code == 1
    text = out.getvalue()
    assert text.startswith("PROBLEM: Schedule 'broken'")
    assert "nightly: '30 2 * * *' in America/New_York" in text
    assert " EST (07:30 UTC)" in text
    assert "  daylight-saving changes in the coming year:" in text
    assert "  ... and more within 2 days" in text


def test_the_json_lists_every_schedule(settings: Settings, tmp_path: Path) -> None:
    out = StringIO()
    with pytest.raises(SystemExit):
        call_command("cronrunner_status", "--schedules", "--json", stdout=out)
    document = json.loads(out.getvalue())
    assert [entry["name"] for entry in document] == ["broken", "nightly", "quarterly"]
    assert document[1]["fires"][0].endswith("07:30:00+00:00")
    [spring] = document[1]["dst"]
    assert spring["first_fire"] == "2027-03-14T07:00:00+00:00" and spring["fires"] == 1


def test_a_minutely_london_schedule_prints_short_dst_lines(
    settings: Settings, tmp_path: Path
) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "schedules": {
            "heartbeat": {
                "task": "tests.testapp.tasks.add",
                "cron": "* * * * *",
                "timezone": "Europe/London",
                "args": [1, 2],
            }
        },
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    out = StringIO()
    call_command("cronrunner_status", "--schedules", "--days", "1", stdout=out)
    lines = out.getvalue().splitlines()
    dst = lines[lines.index("  daylight-saving changes in the coming year:") + 1 :]
    assert len(dst) == 2 and all(len(line) < 220 for line in dst)
    assert "fires at each (120 times: " in dst[1]


def test_days_out_of_range_is_refused() -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="must be at most 366"):
        call_command("cronrunner_status", "--schedules", "--days", "400")


def test_capacity_and_schedules_together_are_refused() -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("cronrunner_status", "--schedules", "--capacity")
