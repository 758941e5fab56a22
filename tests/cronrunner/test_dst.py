"""Daylight-saving changes ahead and what they do to a schedule's slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cronrunner.dst import LISTED, ChangeKind, DstAction, clock_changes, dst_effects
from cronrunner.schedule import CronSchedule

YEAR_START = datetime(2026, 12, 1, tzinfo=UTC)
YEAR_END = datetime(2027, 12, 1, tzinfo=UTC)


def test_new_york_changes_twice_a_year_to_the_second() -> None:
    zone = CronSchedule("* * * * *", "America/New_York").zone
    changes = clock_changes(zone, YEAR_START, YEAR_END)
    assert [(change.at, change.kind) for change in changes] == [
        (datetime(2027, 3, 14, 7, 0, tzinfo=UTC), ChangeKind.SKIPPED),
        (datetime(2027, 11, 7, 6, 0, tzinfo=UTC), ChangeKind.REPEATED),
    ]
    assert changes[0].wall_times == (datetime(2027, 3, 14, 2, 0), datetime(2027, 3, 14, 3, 0))


def test_a_zone_without_dst_has_no_change() -> None:
    assert clock_changes(CronSchedule("* * * * *", "UTC").zone, YEAR_START, YEAR_END) == []


def test_a_fixed_hour_slot_in_the_gap_fires_at_its_end() -> None:
    schedule = CronSchedule("30 2 * * *", "America/New_York")
    [effect] = dst_effects(schedule, YEAR_START, YEAR_END)
    assert effect.affected == [datetime(2027, 3, 14, 2, 30)]
    assert effect.fires_at == [datetime(2027, 3, 14, 7, 0, tzinfo=UTC)]
    assert effect.describe(schedule.zone) == (
        "2027-03-14: the clock jumps from 02:00 to 03:00, so 02:30 does not exist: "
        "fires once at 03:00 EDT (the first instant after)"
    )


def test_a_fixed_hour_slot_in_the_fold_fires_once() -> None:
    schedule = CronSchedule("30 1 * * *", "America/New_York")
    [effect] = dst_effects(schedule, YEAR_START, YEAR_END)
    assert effect.fires_at == [datetime(2027, 11, 7, 5, 30, tzinfo=UTC)]
    assert "happens twice: fires once, at the first (01:30 EDT)" in effect.describe(schedule.zone)


def test_an_elapsed_time_schedule_skips_the_gap_and_fires_in_both_copies_of_the_fold() -> None:
    schedule = CronSchedule("*/30 * * * *", "Europe/London")
    spring, autumn = dst_effects(schedule, YEAR_START, YEAR_END)
    assert spring.affected == [datetime(2027, 3, 28, 1, 0), datetime(2027, 3, 28, 1, 30)]
    assert spring.fires_at == []
    first_copy = datetime(2027, 10, 31, 0, 0, tzinfo=UTC)
    assert autumn.fires_at == [first_copy + timedelta(minutes=30 * i) for i in range(4)]
    assert "fires at each" in autumn.describe(schedule.zone)


def test_a_schedule_no_change_touches_has_no_effect() -> None:
    assert dst_effects(CronSchedule("0 12 * * *", "Europe/London"), YEAR_START, YEAR_END) == []


def test_half_hour_changes_are_found() -> None:
    schedule = CronSchedule("15 2 * * *", "Australia/Lord_Howe")
    [effect] = dst_effects(schedule, YEAR_START, YEAR_END)
    assert effect.change.offset_after - effect.change.offset_before == timedelta(minutes=30)
    assert effect.fires_at == [datetime(2027, 10, 2, 15, 30, tzinfo=UTC)]


def test_a_minutely_schedule_is_told_as_ranges_not_sixty_times() -> None:
    schedule = CronSchedule("* * * * *", "Europe/London")
    spring, autumn = dst_effects(schedule, YEAR_START, YEAR_END)
    assert len(spring.affected) == 60 and len(autumn.fires_at) == 120
    assert spring.describe(schedule.zone) == (
        "2027-03-28: the clock jumps from 01:00 to 02:00, so 60 slots, 01:00 to 01:59, do not "
        "exist: no slot fires for them (the schedule follows elapsed time)"
    )
    assert autumn.describe(schedule.zone) == (
        "2027-10-31: the clock goes back from 02:00 to 01:00, so 60 slots, 01:00 to 01:59, "
        "happen twice: fires at each (120 times: 01:00 to 01:59 BST, then 01:00 to 01:59 GMT; "
        "the schedule follows elapsed time)"
    )


def test_a_few_slots_are_still_listed_one_by_one() -> None:
    schedule = CronSchedule("*/15 1 * * *", "Europe/London")
    spring, autumn = dst_effects(schedule, YEAR_START, YEAR_END)
    assert len(spring.affected) == LISTED
    assert "so 01:00, 01:15, 01:30, 01:45 do not exist: fires once at 02:00 BST" in (
        spring.describe(schedule.zone)
    )
    assert autumn.action is DstAction.FIRES_ONCE


def test_the_json_of_an_effect_has_its_figures_apart() -> None:
    schedule = CronSchedule("* * * * *", "Europe/London")
    _, autumn = dst_effects(schedule, YEAR_START, YEAR_END)
    assert autumn.as_json(schedule.zone) == {
        "date": "2027-10-31",
        "kind": "repeated",
        "changes_at": "2027-10-31T01:00:00+00:00",
        "clock_from": "02:00",
        "clock_to": "01:00",
        "affected_slots": 60,
        "first_slot": "01:00",
        "last_slot": "01:59",
        "action": "fires_at_each",
        "fires": 120,
        "first_fire": "2027-10-31T00:00:00+00:00",
        "last_fire": "2027-10-31T01:59:00+00:00",
        "description": autumn.describe(schedule.zone),
    }
