"""The admin pages in a real browser: real data, screenshots, layout facts and axe-core.

Each page is opened in Debian's Chromium at 1280 and 1920 px, in light and dark mode; the
screenshots go to artifacts/screenshots/<Django version>/ (CRONRUNNER_SCREENSHOTS overrides
it) for a person to look at, and CI keeps them. CI runs this file on Django 5.2, 6.0 and 6.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from pytest_django.fixtures import Settings

from django_cronrunner.backend import CronRunnerBackend
from django_cronrunner.compat import task_backends
from django_cronrunner.models import BatchRun, TaskRecord
from django_cronrunner.run.runner import run_due_tasks
from django_cronrunner.scheduling.schedules import fire_due_slots
from tests.e2e.admin_pages import (
    SCREENSHOTS,
    chart_geometry,
    filter_choices,
    layout_problems,
    screenshot,
    serious_violations,
    set_theme,
    set_viewport,
)
from tests.testapp import tasks

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
IN_CI = os.environ.get("CI") == "true"
#: axe-core from the npm registry, unpacked once into this cache.
AXE_VERSION = "4.10.3"
AXE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "django-cronrunner"
PASSWORD = "a-long-password"

pytestmark = [
    pytest.mark.field,
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="one database is enough for a browser test"
    ),
    pytest.mark.skipif(
        not HAVE_BROWSER and not IN_CI,
        reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them "
        "under CI=true)",
    ),
]


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The text of axe.min.js, fetched with `npm pack` the first time."""
    target = AXE_CACHE / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            if IN_CI:
                pytest.fail("npm is needed to fetch axe-core (scripts/test.sh installs it)")
            pytest.skip("npm is not installed: cannot fetch axe-core")
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run(
                [npm, "pack", f"axe-core@{AXE_VERSION}", "--silent"],
                cwd=scratch,
                check=True,
                capture_output=True,
                timeout=300,
            )
            (tarball,) = Path(scratch).glob("axe-core-*.tgz")
            with tarfile.open(tarball) as archive:
                member = archive.extractfile("package/axe.min.js")
                assert member is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
    return target.read_text()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def history(settings: Settings, tmp_path: Path) -> dict[str, TaskRecord]:
    """Real history: runs of successful, failed, retried, deferred and scheduled tasks."""
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {
        "lock_file": str(tmp_path / "run.lock"),
        "schedules": {
            "nightly-report": {
                "task": "tests.testapp.tasks.report",
                "cron": "30 2 * * *",
                "timezone": "America/New_York",
                "args": ["nightly"],
            },
            "every-minute": {
                "task": "tests.testapp.tasks.add",
                "cron": "* * * * *",
                "args": [1, 2],
            },
            "broken": {"task": "tests.testapp.tasks.add", "cron": "every day"},
        },
    }
    settings.TASKS = {**settings.TASKS, "default": default}
    backend = task_backends["default"]
    assert isinstance(backend, CronRunnerBackend)
    now = timezone.now()
    fire_due_slots(backend, now - timedelta(minutes=5))  # first sight: starts the schedules
    for n in range(20):
        tasks.add.enqueue(n, n)
        if n % 4 == 0:
            tasks.send_email.enqueue(f"user{n}@example.com")
    failed = tasks.fail.enqueue("the invoice service answered 503")
    tasks.fail.enqueue("the invoice service answered 502")
    tasks.picky.enqueue("no such customer")
    flaky = tasks.flaky.enqueue(succeed_on=3)
    tasks.report.using(run_after=now + timedelta(hours=2)).enqueue("weekly")
    run_due_tasks(max_seconds=30)
    for n in range(6):
        tasks.add.enqueue(n, 1)
        run_due_tasks(max_seconds=30)
    # Spread the runs over the last 50 minutes, as a minutely cron job would have made them.
    for n, batch in enumerate(BatchRun.objects.order_by("-started_at")):
        shift = timedelta(minutes=7 * n)
        BatchRun.objects.filter(pk=batch.pk).update(
            started_at=batch.started_at - shift, finished_at=batch.finished_at - shift
        )
    # And a few tasks of two days ago, so the list shows dates as well as times.
    for record in TaskRecord.objects.filter(task_path__endswith=".add").order_by("pk")[:4]:
        days = timedelta(days=2)
        TaskRecord.objects.filter(pk=record.pk).update(
            enqueued_at=record.enqueued_at - days,
            due_at=record.due_at - days,
            started_at=record.started_at and record.started_at - days,
            last_attempted_at=record.last_attempted_at and record.last_attempted_at - days,
            finished_at=record.finished_at and record.finished_at - days,
        )
    scheduled = TaskRecord.objects.filter(schedule_name="every-minute").order_by("-enqueued_at")
    return {
        "failed": TaskRecord.objects.get(pk=failed.id),
        "flaky": TaskRecord.objects.get(pk=flaky.id),
        "scheduled": scheduled.first() or TaskRecord.objects.get(pk=failed.id),
    }


def log_in(browser: Any, live_server: Any, django_user_model: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    django_user_model.objects.create_superuser("operator", "op@example.com", PASSWORD)
    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(browser, 20).until(lambda driver: "/admin/login/" not in driver.current_url)


def test_every_admin_page_renders_in_light_and_dark_at_two_widths(
    browser: Any,
    live_server: Any,
    django_user_model: Any,
    history: dict[str, TaskRecord],
    axe_source: str,
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, live_server, django_user_model)
    base = f"{live_server.url}/admin/django_cronrunner"
    pages = {
        "dashboard": f"{base}/dashboard/",
        "tasks": f"{base}/taskrecord/",
        "task-failed": f"{base}/taskrecord/{history['failed'].pk}/change/",
        "task-retried": f"{base}/taskrecord/{history['flaky'].pk}/change/",
        "task-scheduled": f"{base}/taskrecord/{history['scheduled'].pk}/change/",
        "schedules": f"{base}/schedulestate/",
        "batches": f"{base}/batchrun/",
    }
    problems: list[str] = []
    for theme in ("light", "dark"):
        for name, url in pages.items():
            browser.get(url)
            if name == "dashboard":
                set_theme(browser, theme)
            assert browser.execute_script("return document.documentElement.dataset.theme") == (
                theme
            )
            for width in (1280, 1920):
                set_viewport(browser, width, 900)
                screenshot(browser, f"{name}-{width}-{theme}", width)
                problems += [f"{name} {width} {theme}: {p}" for p in layout_problems(browser)]
                if width == 1280:
                    problems += [
                        f"{name} {theme}: {v}" for v in serious_violations(browser, axe_source)
                    ]
    assert not problems, "\n".join(problems)

    # The first screen of the dashboard, for the README.
    browser.get(pages["dashboard"])
    set_theme(browser, "light")
    set_viewport(browser, 1280, 1000)
    (SCREENSHOTS / "dashboard-first-screen.png").write_bytes(browser.get_screenshot_as_png())
    assert browser.find_elements(By.CSS_SELECTOR, "svg.cronrunner-chart rect.cr-bar")


def test_the_task_list_fits_1280_px_with_one_line_rows(
    browser: Any, live_server: Any, django_user_model: Any, history: dict[str, TaskRecord]
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, live_server, django_user_model)
    set_viewport(browser, 1280, 900)
    browser.get(f"{live_server.url}/admin/django_cronrunner/taskrecord/")
    # Neither the page nor the list's own scroll box scrolls sideways.
    overflow = browser.execute_script(
        "const box = document.querySelector('#changelist .results');"
        "const page = document.documentElement;"
        "return [box.scrollWidth - box.clientWidth, page.scrollWidth - page.clientWidth];"
    )
    assert overflow == [0, 0]
    ids = browser.find_elements(By.CSS_SELECTOR, "#result_list .field-short_id code")
    assert len(ids) >= 20
    for code in ids[:5]:
        assert browser.execute_script("return arguments[0].getClientRects().length", code) == 1
        assert len(code.text) == 8 and code.get_attribute("title").endswith(code.text)
    heights = browser.execute_script(
        "return [...document.querySelectorAll('#result_list tbody tr')]"
        ".map(row => row.getBoundingClientRect().height);"
    )
    line = browser.execute_script(
        "const cell = document.querySelector('#result_list tbody td');"
        "return parseFloat(getComputedStyle(cell).lineHeight) || 16;"
    )
    assert max(heights) < 2 * line + 20, (heights, line)  # one line of text and padding
    # A short id is a link that looks like one: the links' colour, underlined.
    link = browser.find_element(By.CSS_SELECTOR, "#result_list .field-short_id a")
    code = link.find_element(By.TAG_NAME, "code")
    assert code.value_of_css_property("color") == link.value_of_css_property("color")
    assert "underline" in link.value_of_css_property("text-decoration-line")
    # The status filter offers the statuses some row has, as the counts name them (due and
    # deferred apart), and no filter offers a lone "-".
    counts = browser.execute_script(
        "return [...document.querySelectorAll('.cr-counts li')]"
        ".map(li => [li.querySelector('.cr-badge').textContent, li.querySelector('strong')"
        ".textContent]);"
    )
    assert [label for label, _ in counts] == ["Due", "Deferred", "Running", "Successful", "Failed"]
    filters = filter_choices(browser)
    assert filters["status"] == ["All"] + [label for label, count in counts if count != "0"]
    assert "Running" not in filters["status"] and "Deferred" in filters["status"]
    lone = {title: choices for title, choices in filters.items() if "-" in choices}
    assert lone == {}, lone


def test_dashboard_breadcrumbs_are_styled_like_the_admins_own(
    browser: Any, live_server: Any, django_user_model: Any, history: dict[str, TaskRecord]
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, live_server, django_user_model)

    def breadcrumb_style() -> tuple[str, str, str]:
        crumbs = browser.find_element(By.CSS_SELECTOR, ".breadcrumbs")
        return (
            crumbs.value_of_css_property("background-color"),
            crumbs.value_of_css_property("padding-left"),
            crumbs.value_of_css_property("color"),
        )

    browser.get(f"{live_server.url}/admin/django_cronrunner/taskrecord/")
    django_own = breadcrumb_style()
    browser.get(f"{live_server.url}/admin/django_cronrunner/dashboard/")
    ours = breadcrumb_style()
    assert ours == django_own
    assert ours[0] not in ("rgba(0, 0, 0, 0)", "transparent") and ours[1] != "0px"


def test_the_dashboard_refreshes_itself_and_keeps_its_scroll_position(
    browser: Any, live_server: Any, django_user_model: Any, history: dict[str, TaskRecord]
) -> None:
    log_in(browser, live_server, django_user_model)
    set_viewport(browser, 1280, 500)
    browser.get(f"{live_server.url}/admin/django_cronrunner/dashboard/?refresh=2")
    browser.execute_script("window.scrollTo(0, 400); window.notReloaded = true;")
    deadline = time.monotonic() + 20
    while browser.execute_script("return window.notReloaded === true"):
        assert time.monotonic() < deadline, "the page did not reload itself"
        time.sleep(0.2)
    time.sleep(0.5)
    assert abs(browser.execute_script("return window.scrollY") - 400) <= 2


def test_the_retry_button_queues_a_failed_task_again(
    browser: Any, live_server: Any, django_user_model: Any, history: dict[str, TaskRecord]
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, live_server, django_user_model)
    failed = history["failed"]
    browser.get(f"{live_server.url}/admin/django_cronrunner/taskrecord/{failed.pk}/change/")
    browser.find_element(By.CSS_SELECTOR, "button[value=retry]").click()
    assert "1 task(s) queued again." in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    failed.refresh_from_db()
    assert failed.status == "READY"
    # A ready task offers Cancel, not Retry.
    assert browser.find_elements(By.CSS_SELECTOR, "button[value=cancel]")
    assert not browser.find_elements(By.CSS_SELECTOR, "button[value=retry]")


def test_a_few_minutes_of_history_fill_the_chart_with_centred_dots(
    browser: Any, live_server: Any, django_user_model: Any, settings: Settings, tmp_path: Path
) -> None:
    default = dict(settings.TASKS["default"])
    default["OPTIONS"] = {"lock_file": str(tmp_path / "run.lock")}
    settings.TASKS = {**settings.TASKS, "default": default}
    for minute in range(4):
        for n in range(5):
            tasks.add.enqueue(minute, n)
        run_due_tasks(max_seconds=30)
    # Four minutely batches, the last one just now.
    for n, batch in enumerate(BatchRun.objects.order_by("-started_at")):
        shift = timedelta(minutes=n)
        BatchRun.objects.filter(pk=batch.pk).update(
            started_at=batch.started_at - shift, finished_at=batch.finished_at - shift
        )
    log_in(browser, live_server, django_user_model)
    set_viewport(browser, 1280, 1000)
    browser.get(f"{live_server.url}/admin/django_cronrunner/dashboard/")
    screenshot(browser, "dashboard-few-minutes-1280-light", 1280)
    chart = chart_geometry(browser)
    assert len(chart["batches"]) == 4
    # The bars spread over the chart rather than crowd its right end...
    first = min(bar["left"] for bar in chart["batches"])
    assert first - chart["left"] < chart["width"] / 3, chart
    # ...and each dot sits on the middle of its bar.
    for bar in chart["batches"]:
        assert abs(bar["dot"] - bar["centre"]) <= 1, bar
