"""The README's Quick start, as code: a throwaway startproject with the settings and tasks.py it
says to add, and a user's environment to run its manage.py in."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(first_line: str) -> str:
    """Return the Quick start's fenced Python block that starts with `first_line`."""
    text = README.read_text()
    quick_start = text[text.index("## Quick start\n") :]
    quick_start = quick_start[: quick_start.index("\n## ", 1)]
    for block in re.findall(r"```python\n(.*?)```", quick_start, flags=re.DOTALL):
        if block.startswith(first_line):
            return str(block)
    raise AssertionError(f"the README's Quick start has no block starting {first_line!r}")


def user_env(python: Path) -> dict[str, str]:
    """Return this environment as a user's shell would have it, with python's venv active."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
        and not name.startswith("CRONRUNNER_")
    }
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(python.parent.parent)
    return env


def start_project(python: Path, where: Path) -> Path:
    """Run `django-admin startproject mysite` in `where` and add what the Quick start says."""
    subprocess.run(
        [str(python.parent / "django-admin"), "startproject", "mysite"],
        cwd=where,
        env=user_env(python),
        check=True,
        timeout=120,
    )
    project = where / "mysite"
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text() + "\n" + readme_block("# mysite/settings.py: add at the end\n")
    )
    (project / "mysite" / "tasks.py").write_text(readme_block("# mysite/tasks.py"))
    return project


def manage(
    python: Path, project: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `python manage.py ARGS` in the project as its user would; raise if it fails."""
    result = subprocess.run(
        [str(python), "manage.py", *args],
        cwd=project,
        env=user_env(python),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


def enqueue_welcome_emails(python: Path, project: Path, user_ids: list[int]) -> list[str]:
    """Enqueue the Quick start's task once per user id, in one transaction; return the ids."""
    code = (
        "from django.db import transaction\n"
        "from mysite.tasks import send_welcome_email\n"
        "with transaction.atomic():\n"
        f"    for user_id in {user_ids!r}:\n"
        "        print(send_welcome_email.enqueue(user_id=user_id).id)\n"
    )
    out = manage(python, project, "shell", "--verbosity", "0", "--command", code).stdout
    return out.split()
