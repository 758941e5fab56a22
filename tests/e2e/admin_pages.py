"""The browser test's hands and eyes: viewport, theme, screenshots, axe-core, and layout facts
measured in the page."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import django

REPO = Path(__file__).resolve().parents[2]
DJANGO_VERSION = "{}.{}".format(*django.VERSION[:2])
#: One folder per Django version, so that CI's runs on 5.2, 6.0 and 6.1 keep theirs apart.
SCREENSHOTS = Path(
    os.environ.get("CRONRUNNER_SCREENSHOTS", REPO / "artifacts" / "screenshots" / DJANGO_VERSION)
)

#: How far (in RGB units) a badge's colour must be from the page's: Django's own lightest
#: message colour, #ffefef on white, is 22.6 away; #f8f8f8 on white (12) is a badge one
#: cannot see.
VISIBLE_DISTANCE = 20


def set_viewport(browser: Any, width: int, height: int) -> None:
    """Size the window as a screen of width x height pixels would."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def set_theme(browser: Any, theme: str) -> None:
    """Choose the admin's theme as its toggle does (localStorage 'theme'), then reload."""
    browser.execute_script("localStorage.setItem('theme', arguments[0])", theme)
    browser.refresh()
    assert browser.execute_script("return document.documentElement.dataset.theme") == theme


def screenshot(browser: Any, name: str, width: int) -> Path:
    """Save the whole page at this width."""
    set_viewport(browser, width, 900)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    set_viewport(browser, width, min(max(height, 900), 6000))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(browser.get_screenshot_as_png())
    set_viewport(browser, width, 900)
    return path


def serious_violations(browser: Any, axe_source: str) -> list[str]:
    """Run axe-core in the page; describe each serious or critical violation."""
    browser.execute_script(axe_source)
    violations = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations), e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}: "
        + json.dumps([node.get("target") for node in v["nodes"]][:5])
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


LAYOUT_SCRIPT = """
const problems = [];
const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
const describe = e => {
    const title = e.querySelector('h2, h3, caption');
    return (e.id ? '#' + e.id : '.' + [...e.classList].join('.'))
        + (title ? ' "' + title.textContent.trim().slice(0, 40) + '"' : '');
};
const modules = [...document.querySelectorAll('#content .module')].filter(shown);
for (const tools of [...document.querySelectorAll('.object-tools')].filter(shown)) {
    const t = tools.getBoundingClientRect();
    for (const module of modules) {
        const m = module.getBoundingClientRect();
        if (t.left < m.right && m.left < t.right && t.top < m.bottom && m.top < t.bottom) {
            problems.push('the object tools overlap ' + describe(module));
        } else if (t.left < m.right && m.left < t.right && t.bottom > m.top + 1) {
            problems.push('the object tools sit below the top of ' + describe(module));
        }
    }
}
const rgba = text => (text.match(/[\\d.]+/g) || []).map(Number);
const page = rgba(getComputedStyle(document.body).backgroundColor);
for (const badge of document.querySelectorAll('.cr-badge')) {
    const [r, g, b, a] = rgba(getComputedStyle(badge).backgroundColor);
    const distance = Math.hypot(r - page[0], g - page[1], b - page[2]);
    if (a === 0 || distance < arguments[0]) {
        problems.push('the badge "' + badge.textContent.trim() + '" has no visible colour ('
            + getComputedStyle(badge).backgroundColor + ')');
    }
}
const root = document.documentElement;
if (root.scrollWidth > root.clientWidth) {
    problems.push('the page scrolls sideways by ' + (root.scrollWidth - root.clientWidth) + ' px');
}
for (const box of [...document.querySelectorAll('#content .results, #content .module')]
        .filter(shown)) {
    if (box.scrollWidth > box.clientWidth + 1) {
        problems.push(describe(box) + ' is ' + (box.scrollWidth - box.clientWidth)
            + ' px too narrow for its content');
    }
}
return problems;
"""


def layout_problems(browser: Any) -> list[str]:
    """Describe what is wrong with the page's layout: object tools over or below a block, a
    badge without a visible colour, a page or block wider than the window or its box."""
    problems: list[str] = browser.execute_script(LAYOUT_SCRIPT, VISIBLE_DISTANCE)
    return problems


def filter_choices(browser: Any) -> dict[str, list[str]]:
    """Each shown list filter's title and the text of its choices."""
    choices: dict[str, list[str]] = browser.execute_script(
        "const out = {};"
        "for (const filter of document.querySelectorAll('#changelist-filter details')) {"
        "  out[filter.dataset.filterTitle] ="
        "    [...filter.querySelectorAll('li')].map(li => li.textContent.trim());"
        "}"
        "return out;"
    )
    return choices


def chart_geometry(browser: Any) -> dict[str, Any]:
    """The chart's box and each bar's and dot's centre and edges, in page pixels."""
    geometry: dict[str, Any] = browser.execute_script(
        "const svg = document.querySelector('svg.cronrunner-chart').getBoundingClientRect();"
        "const batches = [...document.querySelectorAll('svg.cronrunner-chart g.batch')].map(g => {"
        "  const bar = g.querySelector('rect.cr-bar').getBoundingClientRect();"
        "  const dot = g.querySelector('circle.cr-dot').getBoundingClientRect();"
        "  return {left: bar.left, right: bar.right, centre: bar.left + bar.width / 2,"
        "          dot: dot.left + dot.width / 2};"
        "});"
        "return {left: svg.left, width: svg.width, batches: batches};"
    )
    return geometry
