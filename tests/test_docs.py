"""The reference pages name every command-line option and setting, and the docs site builds."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from django.conf import global_settings
from django.core.management import find_commands, load_command_class

from django_cronrunner.options import KNOWN_OPTIONS, BackendOptions
from django_cronrunner.scheduling.schedules import SCHEDULE_KEYS

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
REFERENCE = DOCS / "reference"
APP = "django_cronrunner"
PACKAGES = (REPO / "cronrunner", REPO / APP)

#: Options every Django command has; Django's documentation covers them.
COMMON_OPTIONS = {
    "--verbosity",
    "--settings",
    "--pythonpath",
    "--traceback",
    "--no-color",
    "--force-color",
    "--skip-checks",
    "--version",
    "--help",
}

#: Any name of our settings' shape, wherever it is spelt: `settings.CRONRUNNER_X`,
#: getattr(settings, "CRONRUNNER_X"), a helper given the name, or an environment variable; but
#: not a prefix that code completes, as in f"CRONRUNNER_TRIGGER_{name}".
PREFIXED_NAME = re.compile(r"\bCRONRUNNER_[A-Z0-9_]*[A-Z0-9]\b")
#: A Django setting read directly, whatever its name.
SETTING_READ = re.compile(
    r"\bsettings\.([A-Z][A-Z0-9_]*)\b|getattr\(\s*settings\s*,\s*[\"']([A-Z][A-Z0-9_]*)[\"']"
)
#: Read from settings but not settings of ours: Django's own, and the settings module's name.
DJANGO_SETTINGS = {name for name in dir(global_settings) if name.isupper()} | {"SETTINGS_MODULE"}


def reference_pages() -> dict[str, str]:
    return {path.name: path.read_text() for path in sorted(REFERENCE.glob("*.md"))}


def command_options() -> dict[str, set[str]]:
    """Map each of the app's management commands to its own long options."""
    commands_dir = REPO / APP / "management"
    options: dict[str, set[str]] = {}
    for name in find_commands(str(commands_dir)):
        parser = load_command_class(APP, name).create_parser("manage.py", name)
        options[name] = {
            option
            for action in parser._actions
            for option in action.option_strings
            if option.startswith("--")
        } - COMMON_OPTIONS
    return options


def backend_option_keys() -> set[str]:
    """Every OPTIONS key, and the keys of the dict-valued options, as the code declares them."""
    fields = {field.name for field in dataclasses.fields(BackendOptions)} - {"alias"}
    keys = fields | set(KNOWN_OPTIONS) | set(SCHEDULE_KEYS)
    for field in dataclasses.fields(BackendOptions):
        factory = field.default_factory
        if factory is dataclasses.MISSING:
            continue
        default = factory()
        # A nested option (retention, retry) is parsed into a dataclass whose fields are its keys.
        if dataclasses.is_dataclass(default):
            keys |= {nested.name for nested in dataclasses.fields(default)}
    return keys


def settings_in(source: str) -> set[str]:
    """Return the settings of ours that `source` reads, and every CRONRUNNER_* name in it."""
    read = {attribute or literal for attribute, literal in SETTING_READ.findall(source)}
    return set(PREFIXED_NAME.findall(source)) | (read - DJANGO_SETTINGS)


def setting_names() -> set[str]:
    """Every setting of ours the packages' source reads."""
    return {
        name
        for package in PACKAGES
        for path in package.rglob("*.py")
        if "migrations" not in path.parts
        for name in settings_in(path.read_text())
    }


def mentions(text: str, name: str) -> bool:
    """Say whether `text` names `name` as a whole token (`--max` is not `--max-seconds`)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def undocumented_options(options: Mapping[str, set[str]], pages: Mapping[str, str]) -> list[str]:
    """Return `command --option` for each option no reference page naming the command lists."""
    missing = []
    for command, names in sorted(options.items()):
        about = [text for text in pages.values() if mentions(text, command)]
        if not about:
            missing.append(command)
        missing.extend(
            f"{command} {name}"
            for name in sorted(names)
            if not any(mentions(text, name) for text in about)
        )
    return missing


def undocumented_settings(
    keys: set[str], settings: set[str], pages: Mapping[str, str]
) -> list[str]:
    """Return the OPTIONS keys not written as code, and the settings not named, in the pages."""
    text = "\n".join(pages.values())
    return sorted(key for key in keys if f"`{key}`" not in text) + sorted(
        name for name in settings if not mentions(text, name)
    )


def test_every_command_option_is_in_the_reference() -> None:
    options = command_options()
    assert {"run_due_tasks", "cronrunner_status"} <= set(options)
    assert "--max-seconds" in options["run_due_tasks"]
    assert undocumented_options(options, reference_pages()) == []


def test_settings_are_found_however_they_are_read() -> None:
    assert {"TASKS", "TIME_ZONE", "DATABASES"} <= DJANGO_SETTINGS
    source = (
        'getattr(settings, "CRONRUNNER_A", 1)\nsettings.CRONRUNNER_B\n'
        'getattr(settings, "TRIGGER_TOKEN")\nsettings.TIME_ZONE\nos.environ["CRONRUNNER_C"]\n'
    )
    assert settings_in(source) == {"CRONRUNNER_A", "CRONRUNNER_B", "CRONRUNNER_C", "TRIGGER_TOKEN"}


def test_every_setting_is_in_the_reference() -> None:
    keys = backend_option_keys()
    assert {"lease_seconds", "retention", "successful", "max_delay", "catch_up"} <= keys
    assert undocumented_settings(keys, setting_names(), reference_pages()) == []


def test_a_missing_option_or_setting_is_reported() -> None:
    pages = reference_pages()
    stripped = {
        name: re.sub(r"--poll(?![\w-])|`lease_seconds`|`max_delay`", "", text)
        for name, text in pages.items()
    }
    assert undocumented_options(command_options(), stripped) == ["run_due_tasks --poll"]
    new_setting = "CRONRUNNER_" + "NOT_DOCUMENTED"
    assert undocumented_settings(backend_option_keys(), {new_setting}, stripped) == [
        "lease_seconds",
        "max_delay",
        new_setting,
    ]


def markdown_pages() -> Iterator[Path]:
    yield from (path for path in DOCS.rglob("*.md") if "_build" not in path.parts)


def test_every_page_starts_with_its_title() -> None:
    untitled = [
        str(path.relative_to(DOCS))
        for path in markdown_pages()
        if not path.read_text().startswith("# ")
    ]
    assert untitled == []


def test_the_docs_build_with_warnings_as_errors(tmp_path: Path) -> None:
    missing = [
        name for name in ("sphinx", "furo", "myst_parser") if importlib.util.find_spec(name) is None
    ]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} not installed; CI installs them: pip install -e .[docs]")
        pytest.skip(f"{missing} not installed (pip install -e .[docs])")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", DOCS, tmp_path],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "reference" / "api.html").exists()
