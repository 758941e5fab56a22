"""The admin dashboard in a real browser: log in, open it, and see the chart drawn."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from django_cronrunner.models import BatchRun
from django_cronrunner.runner import run_due_tasks
from tests.testapp import tasks

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="one database is enough for a browser test"
    ),
    pytest.mark.skipif(
        not HAVE_BROWSER and os.environ.get("CI") != "true",
        reason="needs Debian's chromium and chromium-driver (scripts/test.sh installs them "
        "under CI=true)",
    ),
]


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
    yield driver
    driver.quit()


def test_the_dashboard_chart_renders_after_logging_in(
    browser: Any, live_server: Any, django_user_model: Any
) -> None:
    from selenium.webdriver.common.by import By

    django_user_model.objects.create_superuser("operator", "op@example.com", "a-long-password")
    for n in range(3):
        tasks.add.enqueue(n, n)
        run_due_tasks(max_seconds=30)
    assert BatchRun.objects.count() == 3

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys("a-long-password")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # From the admin index, follow its link to the dashboard, as an operator would.
    browser.find_element(By.LINK_TEXT, "Dashboard").click()
    assert "Task runner dashboard" in browser.title
    chart = browser.find_element(By.CSS_SELECTOR, "svg.cronrunner-chart")
    bars = chart.find_elements(By.CSS_SELECTOR, "rect")
    assert len(bars) == 3
    # Drawn, not just present: the browser laid the chart out with a real size.
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    assert all(bar.get_attribute("height") not in (None, "0", "0.0") for bar in bars)
    assert not browser.find_elements(By.CSS_SELECTOR, ".cronrunner-problems")
