"""Read the HTTP trigger recipes in contrib/http-trigger/ as the calls their schedulers make."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "contrib" / "http-trigger"
#: Where every recipe points: the docs' `path("cron/", include("django_cronrunner.urls"))`.
EXAMPLE_URL = "https://example.com/cron/trigger/"
#: What recipes put where the secret goes, for the caller to fill in.
SECRET = "{secret}"


@dataclass(frozen=True)
class Call:
    """One scheduler's request: method, URL, headers, and how often it comes."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    schedule: str = ""
    #: A shell command line that makes the call, when the recipe ships one.
    shell: str | None = None
    #: How long the caller waits for the answer, when the recipe sets it.
    waits: float | None = None


def github_actions() -> Call:
    workflow = yaml.safe_load((RECIPES / "github-actions.yml").read_text())
    # YAML 1.1 reads the key `on` as True.
    schedule = workflow[True]["schedule"][0]["cron"]
    (step,) = workflow["jobs"]["run-due-tasks"]["steps"]
    return Call(**_curl(step["run"]), schedule=schedule, shell=step["run"])


def vercel() -> Call:
    (cron,) = json.loads((RECIPES / "vercel.json").read_text())["crons"]
    # Vercel sends GET, with `Authorization: Bearer $CRON_SECRET` when that variable is set.
    return Call(
        "GET",
        "https://example.com" + cron["path"],
        {"Authorization": f"Bearer {SECRET}"},
        cron["schedule"],
    )


def cloud_scheduler() -> Call:
    script = (RECIPES / "cloud-scheduler.sh").read_text().replace("\\\n", " ")
    (line,) = [line for line in script.splitlines() if line.startswith("gcloud ")]
    options = dict(arg.split("=", 1) for arg in shlex.split(line) if arg.startswith("--"))
    headers = dict(pair.split("=", 1) for pair in options["--headers"].split(","))
    deadline = options["--attempt-deadline"]
    assert deadline.endswith("s"), deadline
    return Call(
        options["--http-method"],
        options["--uri"],
        {
            name: value.replace("${CRONRUNNER_TRIGGER_SECRET}", SECRET)
            for name, value in headers.items()
        },
        options["--schedule"],
        waits=float(deadline[:-1]),
    )


def eventbridge() -> Call:
    template = json.loads((RECIPES / "eventbridge.json").read_text())
    resources = template["Resources"]
    auth = resources["Connection"]["Properties"]["AuthParameters"]["ApiKeyAuthParameters"]
    assert auth["ApiKeyValue"] == {"Ref": "TriggerSecret"}
    destination = resources["Destination"]["Properties"]
    assert destination["InvocationEndpoint"] == {"Ref": "TriggerUrl"}
    return Call(
        destination["HttpMethod"],
        template["Parameters"]["TriggerUrl"]["Default"],
        {auth["ApiKeyName"]: SECRET},
        resources["EveryMinute"]["Properties"]["ScheduleExpression"],
    )


def pythonanywhere() -> Call:
    text = (RECIPES / "pythonanywhere.md").read_text()
    (line,) = [line.strip() for line in text.splitlines() if line.strip().startswith("curl ")]
    return Call(**_curl(line), shell=line)


def _curl(line: str) -> dict[str, object]:
    """Read method, URL and headers from a curl command line."""
    args = shlex.split(line)
    assert args[0] == "curl", line
    method = args[args.index("-X") + 1]
    headers = dict(args[i + 1].split(": ", 1) for i, arg in enumerate(args) if arg == "-H")
    (url,) = [arg for arg in args if re.match(r"https://|\$", arg)]
    secret_vars = ("$CRONRUNNER_TRIGGER_SECRET",)
    for name, value in headers.items():
        for var in secret_vars:
            headers[name] = value.replace(var, SECRET)
    waits = float(args[args.index("--max-time") + 1]) if "--max-time" in args else None
    return {"method": method, "url": url, "headers": headers, "waits": waits}


@dataclass(frozen=True)
class NoCronSection:
    """The README's "No cron?" section: its settings, its URLconf lines and its curl line."""

    text: str
    settings: str
    urls: str
    curl: str

    def call(self) -> Call:
        return Call(**_curl(self.curl), shell=self.curl)


def readme_no_cron() -> NoCronSection:
    """Read the README's "No cron?" section and its three code blocks, in order."""
    readme = (REPO / "README.md").read_text()
    (text,) = re.findall(r"^## No cron\?\n(.*?)(?=^## )", readme, re.M | re.S)
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", text, re.M | re.S)
    assert [language for language, _ in blocks] == ["python", "python", "sh"], blocks
    settings, urls, curl = (code for _, code in blocks)
    (line,) = curl.strip().splitlines()
    return NoCronSection(text, settings, urls, line)


ALL = {
    "github-actions": github_actions,
    "vercel": vercel,
    "cloud-scheduler": cloud_scheduler,
    "eventbridge": eventbridge,
    "pythonanywhere": pythonanywhere,
}
