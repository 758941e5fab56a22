"""The lines that start runs for this project: the crontab line, the systemd units, and the
HTTP trigger's URL and curl line, as cronrunner_setup prints them."""

from __future__ import annotations

import math
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True, slots=True)
class Invocation:
    """Where and how cron should start run_due_tasks for this project."""

    python: str
    manage_py: Path
    settings_module: str | None
    max_seconds: float
    log: Path

    @property
    def directory(self) -> Path:
        return self.manage_py.parent

    def command(self) -> str:
        parts = [self.python, str(self.manage_py), "run_due_tasks", "--max-seconds"]
        return shlex.join([*parts, f"{self.max_seconds:g}"])

    def crontab_line(self) -> str:
        """Return one crontab line: absolute paths, settings module, a log it can create."""
        environment = (
            f"DJANGO_SETTINGS_MODULE={shlex.quote(self.settings_module)} "
            if self.settings_module
            else ""
        )
        # mkdir -p: the redirect fails, and cron runs nothing, when the log's directory is missing.
        line = (
            f"* * * * * cd {shlex.quote(str(self.directory))} "
            f"&& mkdir -p {shlex.quote(str(self.log.parent))} "
            f"&& {environment}{self.command()} >> {shlex.quote(str(self.log))} 2>&1"
        )
        # cron turns an unescaped % into a newline before the shell sees the command.
        return line.replace("%", "\\%")

    def systemd_units(self, user: str) -> dict[str, str]:
        """Return the service and timer, shaped as contrib/systemd's, for this project."""
        environment = (
            f"Environment=DJANGO_SETTINGS_MODULE={self.settings_module}\n"
            if self.settings_module
            else ""
        )
        service = (
            "[Unit]\nDescription=django-cronrunner: run due background tasks\n\n"
            "[Service]\nType=oneshot\n"
            f"User={user}\nWorkingDirectory={self.directory}\n{environment}"
            f"ExecStart={self.command()}\n"
            f"TimeoutStopSec={math.ceil(self.max_seconds) + 70}\nKillMode=mixed\n"
        )
        timer = (
            "[Unit]\nDescription=Run django-cronrunner every minute\n\n"
            "[Timer]\nOnCalendar=minutely\nPersistent=true\nAccuracySec=1s\n"
            "Unit=django-cronrunner.service\n\n"
            "[Install]\nWantedBy=timers.target\n"
        )
        return {"django-cronrunner.service": service, "django-cronrunner.timer": timer}


def find_manage_py(explicit: str | None) -> Path:
    """Return manage.py: as given, else the script being run, else ./manage.py."""
    if explicit:
        return Path(explicit).resolve()
    script = Path(sys.argv[0])
    if script.name == "manage.py":
        return script.resolve()
    return (Path.cwd() / "manage.py").resolve()


def interpreter_path(executable: str) -> str:
    """Return the interpreter as an absolute path without `..`, still inside its virtualenv."""
    # realpath() of the file itself would follow a virtualenv's bin/python link out of the venv.
    directory, name = os.path.split(os.path.abspath(executable))
    return os.path.join(os.path.realpath(directory), name)


def default_log(manage_py: Path) -> Path:
    """Return the log file the crontab line appends to when --log is not given."""
    return manage_py.parent / "logs" / "cronrunner.log"


def trigger_lines(site_url: str | None) -> list[str]:
    """Say what a scheduler must call to reach the HTTP trigger (the secret masked) and give a
    curl line that reads the secret from the environment; nothing when no secret is set."""
    from django.urls import NoReverseMatch, reverse

    from django_cronrunner.trigger_options import ANSWER_GRACE, TriggerSettings

    config = TriggerSettings.load()
    if config.secret is None:
        return []
    try:
        path = reverse("django_cronrunner:trigger")
    except NoReverseMatch:
        return [
            "CRONRUNNER_TRIGGER_SECRET is set, but no URLconf includes django_cronrunner.urls: "
            'add path("cron/", include("django_cronrunner.urls")).'
        ]
    hosts = [h.lstrip(".") for h in settings.ALLOWED_HOSTS if "*" not in h and h.strip(".")]
    if site_url is None and hosts:
        local = hosts[0] in ("localhost", "127.0.0.1", "[::1]")
        site_url = f"{'http' if local else 'https'}://{hosts[0]}"
    url = (site_url or "https://your-site.example").rstrip("/") + path
    masked = f"{config.secret[:4]}{'*' * 8}"
    methods = "POST or GET" if config.allow_get else "POST"
    lines = [
        f"URL:    {url} ({methods}, once a minute)",
        f"Header: Authorization: Bearer {masked}   (or X-Cronrunner-Key: {masked})",
    ]
    if config.key_in_path:
        lines.append(f"Plain URL, for schedulers that send no header: {url}{masked}/")
    lines.append(
        f"curl -fsS -X POST --max-time {math.ceil(config.max_seconds) + ANSWER_GRACE} "
        f'-H "Authorization: Bearer $CRONRUNNER_TRIGGER_SECRET" {shlex.quote(url)}'
    )
    return lines
