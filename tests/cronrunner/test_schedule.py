"""Schedule maths: slots across zones and DST, catch-up policies, properties of random schedules."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from cronrunner.errors import InvalidSchedule
from cronrunner.schedule import (
    ALL_CATCH_UP_CAP,
    SKIP_GRACE,
    CatchUp,
    CronSchedule,
    due_slots,
    parse_catch_up,
)

NEW_YORK = "America/New_York"
LONDON = "Europe/London"
LORD_HOWE = "Australia/Lord_Howe"
YEAR_2026 = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).isoformat()


@pytest.mark.parametrize(
    ("expression", "zone", "message"),
    [
        ("61 * * * *", "UTC", "Invalid cron expression '61 * * * *'"),
        ("* * * *", "UTC", "must have 5 fields"),
        ("* * * * * *", "UTC", "must have 5 fields"),
        ("", "UTC", "must have 5 fields"),
        ("@reboot", "UTC", "Unknown cron alias '@reboot'"),
        ("0 0 30 2 *", "UTC", "never fires"),
        ("* * * * *", "Mars/Olympus_Mons", "Unknown time zone 'Mars/Olympus_Mons'"),
        ("* * * * *", "", "Unknown time zone ''"),
        ("* * * * *", "../etc/passwd", "Unknown time zone"),
    ],
)
def test_invalid_declarations_name_the_problem(expression: str, zone: str, message: str) -> None:
    with pytest.raises(InvalidSchedule, match=message.replace("*", r"\*")):
        CronSchedule(expression, zone)


def test_aliases_and_spacing_are_accepted() -> None:
    assert CronSchedule("@hourly").fields == "0 * * * *"
    assert CronSchedule("@DAILY").fields == "0 0 * * *"
    assert CronSchedule("  */5   *  * * *").fields == "*/5 * * * *"
    assert CronSchedule("@weekly").next_slot(utc(2026, 11, 22, 12)) == utc(2026, 11, 29)


def test_catch_up_policy_names() -> None:
    assert parse_catch_up("all") is CatchUp.ALL
    with pytest.raises(InvalidSchedule, match=r"Unknown catch-up policy 'sometimes'.*'latest'"):
        parse_catch_up("sometimes")


@pytest.mark.parametrize(
    ("expression", "real_time"),
    [
        ("*/30 * * * *", True),
        ("@hourly", True),
        ("0 */2 * * *", True),
        ("0 8-18/2 * * *", True),
        ("30 2 * * *", False),
        ("0 1-3 * * *", False),
        ("@daily", False),
    ],
)
def test_which_schedules_follow_real_time(expression: str, real_time: bool) -> None:
    assert CronSchedule(expression).follows_real_time is real_time


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        CronSchedule("* * * * *").next_slot(datetime(2026, 1, 1))


@pytest.mark.parametrize("zone", [NEW_YORK, LONDON])
def test_quarter_hourly_fires_every_real_quarter_hour_for_a_year(zone: str) -> None:
    slots = CronSchedule("*/15 * * * *", zone).slots(*YEAR_2026)
    # Real time has no DST: the skipped spring hour and the repeated autumn hour cancel out.
    assert len(slots) == 365 * 24 * 4
    gaps = {later - earlier for earlier, later in itertools.pairwise(slots)}
    assert gaps == {timedelta(minutes=15)}


@pytest.mark.parametrize(
    ("expression", "zone"),
    [
        ("30 2 * * *", NEW_YORK),
        ("30 2 * * *", LONDON),
        ("30 1 * * *", NEW_YORK),
        ("30 1 * * *", LONDON),
    ],
)
def test_fixed_time_fires_once_per_local_day_for_a_year(expression: str, zone: str) -> None:
    schedule = CronSchedule(expression, zone)
    slots = schedule.slots(*YEAR_2026)
    days = [slot.astimezone(schedule.zone).date() for slot in slots]
    assert len(slots) == 365
    assert len(set(days)) == 365


def test_new_york_spring_forward_runs_skipped_time_at_end_of_gap() -> None:
    schedule = CronSchedule("30 2 * * *", NEW_YORK)
    slots = schedule.slots(utc(2026, 3, 7), utc(2026, 3, 10))
    assert [local(slot, NEW_YORK) for slot in slots] == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:30 does not exist: fire as the clock reaches 03:00
        "2026-03-09T02:30:00-04:00",
    ]


def test_several_skipped_times_collapse_into_one_slot() -> None:
    schedule = CronSchedule("0,30 2 * * *", NEW_YORK)
    slots = schedule.slots(utc(2026, 3, 8), utc(2026, 3, 8, 12))
    assert [local(slot, NEW_YORK) for slot in slots] == ["2026-03-08T03:00:00-04:00"]


def test_new_york_fall_back_fires_fixed_time_once() -> None:
    schedule = CronSchedule("30 1 * * *", NEW_YORK)
    # Plain croniter over aware times is the bug users report; we fire at the first 01:30 only.
    slots = schedule.slots(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert [local(slot, NEW_YORK) for slot in slots] == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_new_york_fall_back_real_time_fires_in_both_copies_of_the_hour() -> None:
    schedule = CronSchedule("*/30 * * * *", NEW_YORK)
    slots = schedule.slots(utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 7))
    assert [local(slot, NEW_YORK) for slot in slots] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]


def test_next_slot_from_inside_the_repeated_hour() -> None:
    schedule = CronSchedule("*/30 * * * *", NEW_YORK)
    # 01:50 EDT: the next real half hour is 01:00 EST, earlier on the wall clock.
    assert (
        local(schedule.next_slot(utc(2026, 11, 1, 5, 50)), NEW_YORK) == "2026-11-01T01:00:00-05:00"
    )
    fixed = CronSchedule("15 1 * * *", NEW_YORK)
    assert local(fixed.next_slot(utc(2026, 11, 1, 6, 10)), NEW_YORK) == "2026-11-02T01:15:00-05:00"


def test_london_transitions() -> None:
    spring = CronSchedule("30 1 * * *", LONDON).slots(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert [local(slot, LONDON) for slot in spring] == ["2026-03-29T02:00:00+01:00"]
    autumn = CronSchedule("*/20 * * * *", LONDON).slots(
        utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 1)
    )
    assert [local(slot, LONDON) for slot in autumn] == [
        "2026-10-25T01:00:00+01:00",
        "2026-10-25T01:20:00+01:00",
        "2026-10-25T01:40:00+01:00",
        "2026-10-25T01:00:00+00:00",
    ]


def test_lord_howe_half_hour_shifts() -> None:
    autumn = CronSchedule("*/15 * * * *", LORD_HOWE).slots(
        utc(2026, 4, 4, 14, 40), utc(2026, 4, 4, 15, 30)
    )
    assert [local(slot, LORD_HOWE) for slot in autumn] == [
        "2026-04-05T01:45:00+11:00",
        "2026-04-05T01:30:00+10:30",  # 01:30-02:00 happens twice
        "2026-04-05T01:45:00+10:30",
        "2026-04-05T02:00:00+10:30",
    ]
    assert len(CronSchedule("45 1 * * *", LORD_HOWE).slots(utc(2026, 4, 4), utc(2026, 4, 5))) == 1
    spring = CronSchedule("15 2 * * *", LORD_HOWE).slots(utc(2026, 10, 3), utc(2026, 10, 5))
    assert [local(slot, LORD_HOWE) for slot in spring] == [
        "2026-10-04T02:30:00+11:00",  # 02:00-02:30 is skipped
        "2026-10-05T02:15:00+11:00",
    ]


def test_slots_limit_and_upcoming_agree() -> None:
    schedule = CronSchedule("0 9 * * 1-5", NEW_YORK)
    after = utc(2026, 11, 20, 15)  # Friday 10:00 in New York
    assert schedule.upcoming(after, 3) == schedule.slots(after, utc(2027, 1, 1), limit=3)
    assert [local(slot, NEW_YORK) for slot in schedule.upcoming(after, 2)] == [
        "2026-11-23T09:00:00-05:00",
        "2026-11-24T09:00:00-05:00",
    ]


OUTAGE_START = utc(2026, 6, 1, 9, 0, 30)
OUTAGE_END = utc(2026, 6, 1, 12, 0, 30)  # three hours later, 30 s after a slot


def test_latest_policy_fires_only_the_most_recent_missed_slot() -> None:
    schedule = CronSchedule("*/15 * * * *")
    assert due_slots(schedule, OUTAGE_START, OUTAGE_END, CatchUp.LATEST) == [utc(2026, 6, 1, 12)]


def test_all_policy_fires_every_missed_slot_in_order() -> None:
    schedule = CronSchedule("*/15 * * * *")
    slots = due_slots(schedule, OUTAGE_START, OUTAGE_END, CatchUp.ALL)
    assert slots[0] == utc(2026, 6, 1, 9, 15)
    assert slots[-1] == utc(2026, 6, 1, 12)
    assert len(slots) == 12


def test_skip_policy_fires_only_slots_within_grace() -> None:
    schedule = CronSchedule("*/15 * * * *")
    assert due_slots(schedule, OUTAGE_START, OUTAGE_END, CatchUp.SKIP) == [utc(2026, 6, 1, 12)]
    too_late = OUTAGE_END + SKIP_GRACE
    assert due_slots(schedule, OUTAGE_START, too_late, CatchUp.SKIP) == []


def test_all_policy_is_capped_to_the_most_recent_slots() -> None:
    schedule = CronSchedule("* * * * *")
    slots = due_slots(schedule, utc(2026, 1, 1), utc(2026, 1, 3), CatchUp.ALL)
    assert len(slots) == ALL_CATCH_UP_CAP
    assert slots[-1] == utc(2026, 1, 3)
    assert due_slots(schedule, utc(2026, 1, 1), utc(2026, 1, 3), CatchUp.ALL, cap=5) == [
        utc(2026, 1, 2, 23, 56) + timedelta(minutes=step) for step in range(5)
    ]


def test_latest_policy_finds_a_slot_long_ago_quickly() -> None:
    schedule = CronSchedule("0 0 1 1 *")
    assert due_slots(schedule, utc(2020, 6, 1), utc(2026, 11, 22), CatchUp.LATEST) == [
        utc(2026, 1, 1)
    ]
    assert due_slots(schedule, utc(2026, 6, 1), utc(2026, 11, 22), CatchUp.LATEST) == []


def test_no_slots_when_the_window_is_empty() -> None:
    schedule = CronSchedule("* * * * *")
    for policy in CatchUp:
        assert due_slots(schedule, utc(2026, 1, 1, 12), utc(2026, 1, 1, 12), policy) == []
        assert due_slots(schedule, utc(2026, 1, 1, 12), utc(2026, 1, 1, 11), policy) == []


# Property tests: random schedules, zones and start times, checked against croniter's own
# matcher applied minute by minute, which shares no code with the slot walk.

ZONES = [NEW_YORK, LONDON, LORD_HOWE, "Asia/Kolkata", "Pacific/Chatham", "America/Santiago", "UTC"]


def transitions(zone: str) -> list[datetime]:
    """Return the 2026 instants (to the minute) where the zone's offset changes."""
    tz = ZoneInfo(zone)
    found = []
    moment = utc(2026, 1, 1)
    offset = moment.astimezone(tz).utcoffset()
    while moment < utc(2027, 1, 1):
        moment += timedelta(hours=1)
        if moment.astimezone(tz).utcoffset() != offset:
            step_back = moment - timedelta(hours=1)
            while step_back.astimezone(tz).utcoffset() == offset:
                step_back += timedelta(minutes=1)
            found.append(step_back)
            offset = moment.astimezone(tz).utcoffset()
    return found


TRANSITIONS = {zone: transitions(zone) for zone in ZONES}

minute_fields = st.one_of(
    st.just("*"),
    st.integers(1, 30).map(lambda step: f"*/{step}"),
    st.integers(0, 59).map(str),
    st.lists(st.integers(0, 59), min_size=2, max_size=4, unique=True).map(
        lambda values: ",".join(map(str, sorted(values)))
    ),
)
hour_fields = st.one_of(
    st.just("*"),
    st.integers(1, 6).map(lambda step: f"*/{step}"),
    st.integers(0, 23).map(str),
    st.tuples(st.integers(0, 11), st.integers(12, 23)).map(
        lambda bounds: f"{bounds[0]}-{bounds[1]}"
    ),
)
expressions = st.tuples(minute_fields, hour_fields, st.sampled_from(["*", "*", "1", "1-15"])).map(
    lambda parts: f"{parts[0]} {parts[1]} {parts[2]} * *"
)


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, datetime]:
    """Draw a zone and a start near one of its transitions (or anywhere in 2026)."""
    zone = draw(st.sampled_from(ZONES))
    near = TRANSITIONS[zone]
    near_a_transition: bool = draw(st.booleans())
    if near and near_a_transition:
        start = draw(st.sampled_from(near)) - timedelta(minutes=draw(st.integers(0, 240)))
    else:
        start = utc(2026, 1, 1) + timedelta(minutes=draw(st.integers(0, 365 * 24 * 60)))
    return zone, start + timedelta(seconds=draw(st.integers(0, 59)))


def expected_slots(schedule: CronSchedule, after: datetime, until: datetime) -> list[datetime]:
    """Brute force: test every minute of real time in (after, until] against croniter.match."""
    expected: list[datetime] = []
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= until:
        wall = minute.astimezone(schedule.zone)
        previous = (minute - timedelta(minutes=1)).astimezone(schedule.zone)
        jump = wall.utcoffset() - previous.utcoffset()  # type: ignore[operator]
        if croniter.match(schedule.fields, wall.replace(tzinfo=None)) and (
            schedule.follows_real_time or wall.fold == 0
        ):
            expected.append(minute)
        elif jump > timedelta(0) and not schedule.follows_real_time:
            skipped = wall.replace(tzinfo=None) - jump
            while skipped < wall.replace(tzinfo=None):
                if croniter.match(schedule.fields, skipped):
                    expected.append(minute)
                    break
                skipped += timedelta(minutes=1)
        minute += timedelta(minutes=1)
    return expected


@settings(max_examples=60, deadline=None)
@given(expression=expressions, window=windows())
def test_slots_match_brute_force(expression: str, window: tuple[str, datetime]) -> None:
    zone, after = window
    schedule = CronSchedule(expression, zone)
    until = after + timedelta(hours=8)
    assert schedule.slots(after, until) == expected_slots(schedule, after, until)


@settings(max_examples=60, deadline=None)
@given(expression=expressions, window=windows())
def test_each_next_slot_is_strictly_later(expression: str, window: tuple[str, datetime]) -> None:
    zone, after = window
    schedule = CronSchedule(expression, zone)
    chained = []
    moment = after
    for _ in range(12):
        moment = schedule.next_slot(moment)
        chained.append(moment)
    assert chained[0] > after
    assert all(earlier < later for earlier, later in itertools.pairwise(chained))
    assert chained == schedule.upcoming(after, 12)
    # Asking from any slot continues the same sequence: nothing lost or repeated.
    assert schedule.upcoming(chained[4], 7) == chained[5:]


@settings(max_examples=40, deadline=None)
@given(
    expression=expressions,
    window=windows(),
    split=st.integers(1, 600),
    policy=st.sampled_from(list(CatchUp)),
)
def test_catch_up_windows_fire_each_slot_at_most_once(
    expression: str, window: tuple[str, datetime], split: int, policy: CatchUp
) -> None:
    zone, since = window
    schedule = CronSchedule(expression, zone)
    middle = since + timedelta(minutes=split)
    until = middle + timedelta(minutes=600)
    fired = due_slots(schedule, since, middle, policy) + due_slots(schedule, middle, until, policy)
    everything = schedule.slots(since, until)
    assert len(fired) == len(set(fired))
    assert set(fired) <= set(everything)
    if policy is CatchUp.ALL:
        assert fired == everything
