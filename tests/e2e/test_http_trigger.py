"""The HTTP trigger on a real server (gunicorn on 127.0.0.1), called by curl."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from pytest_django.fixtures import Settings

from django_cronrunner.bulk import enqueue_many
from django_cronrunner.models import BatchRun, TaskDuration, TaskRecord
from django_cronrunner.operations.setup_lines import trigger_lines
from django_cronrunner.trigger_options import DEFAULT_REQUEST_TIMEOUT
from tests import recipes
from tests.e2e.conftest import REPO, subprocess_env, wait_for
from tests.testapp import tasks

pytestmark = [pytest.mark.field, pytest.mark.django_db(transaction=True)]

SECRET = "fIeLd-Kq8vZ0pYwX4mN7bL2cD5fG9hJ3sA6eU1tR"
BUDGET = 5.0
#: The longest task the long test enqueues.
LONGEST_TASK = 0.2
#: What a loaded machine adds to a batch past its budget and its last task: the closing
#: statements (backlog, batch log row), the enqueuer holding SQLite's write lock.
SLACK = 2.0
#: ... and to a call on top: a request waiting for a free worker, and the whole round trip on
#: a machine whose load can reach ten times its cores (a call took 9.5 s of a 5 s budget there).
CALL_SLACK = 8.0
SUMMARY_KEYS = {"ran", "succeeded", "failed", "recovered", "scheduled", "backlog", "stopped"}


def require_tools() -> None:
    for tool in ("curl", "bash"):
        if shutil.which(tool) is None:
            if os.environ.get("CI") == "true":
                raise AssertionError(f"{tool} is required under CI=true")
            pytest.skip(f"{tool} is not installed")
    if connection.vendor == "mysql":
        pytest.skip("the real-server trigger test runs on SQLite and PostgreSQL")


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"{self.base}/cron/trigger/"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def serve(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start gunicorn with the trigger settings on a free port; stop it after the test."""
    require_tools()
    started: list[Server] = []

    def start(
        workers: int = 3,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        settings: str = "",
        urls: str | None = None,
        **env: str,
    ) -> Server:
        """Serve with gunicorn's --timeout `timeout` (tests.trigger_settings and `settings`
        must agree with it), the lines `settings` added to the settings, and `urls` as the
        URLconf."""
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        module = f"site_{port}"
        (tmp_path / f"{module}_settings.py").write_text(
            f"from tests.trigger_settings import *  # noqa: F403\n{settings}\n"
            + (f'ROOT_URLCONF = "{module}_urls"\n' if urls is not None else "")
        )
        if urls is not None:
            (tmp_path / f"{module}_urls.py").write_text(urls)
        environment = subprocess_env(
            DJANGO_SETTINGS_MODULE=f"{module}_settings",
            PYTHONPATH=f"{REPO}{os.pathsep}{tmp_path}",
            CRONRUNNER_TEST_TRIGGER_SECRET=SECRET,
            CRONRUNNER_TEST_TRIGGER_BUDGET=str(BUDGET),
            CRONRUNNER_TEST_LOCK_FILE=str(tmp_path / "run.lock"),
            **{name: value.format(port=port) for name, value in env.items()},
        )
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
                    *("--workers", str(workers), "--timeout", f"{timeout:g}", "--preload"),
                    "django.core.wsgi:get_wsgi_application()",
                ],
                cwd=REPO,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        server = Server(f"http://127.0.0.1:{port}", process, log)
        started.append(server)

        def listening() -> bool:
            assert process.poll() is None, server.output()
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_for(listening, timeout=60)
        # A request with our header is no visit: the visitor-driven mode ignores it.
        probe = ["curl", "-sS", "-o", "/dev/null", "-H", "X-Cronrunner-Key: probe"]
        subprocess.run([*probe, f"{server.base}/page/"], check=True, timeout=60)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        assert SECRET not in server.output()


def curl(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    """Call with curl; return the status code and the JSON body."""
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=True,
    )
    body, _, code = result.stdout.rpartition("\n")
    return int(code), json.loads(body) if body.startswith("{") else {}


LOOP = r"""
end=$((SECONDS + $1)); n=0
while [ $SECONDS -lt $end ]; do
    n=$((n + 1))
    curl -sS -o "$2-$n.json" -w '%{http_code} %{time_total}\n' -X POST --max-time 60 \
        -H "Authorization: Bearer $KEY" "$URL" >> "$2.codes" || echo "curl-failed $?" >> "$2.codes"
    sleep "$3"
done
"""


def test_a_url_called_in_a_loop_runs_every_task_and_schedule_once(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    seconds = float(os.environ.get("CRONRUNNER_TRIGGER_FIELD_SECONDS", "150"))
    out, slots = tmp_path / "ran.txt", tmp_path / "slots.txt"
    server = serve(CRONRUNNER_TEST_SCHEDULE_FILE=str(slots))
    env = {**os.environ, "KEY": SECRET, "URL": server.url}
    loops = [
        subprocess.Popen(
            ["bash", "-c", LOOP, "loop", str(int(seconds)), str(tmp_path / name), pause], env=env
        )
        for name, pause in (("a", "1"), ("b", "0.7"))
    ]
    enqueued: list[str] = []
    burst: list[tuple[int, dict[str, object]]] = []
    started = time.monotonic()
    rng = random.Random(17)
    while time.monotonic() - started < seconds:
        lines = [f"t{len(enqueued) + i}" for i in range(rng.randint(1, 6))]
        sleep = rng.choice([0.0, 0.0, 0.01, LONGEST_TASK])
        enqueue_many(
            tasks.append_line,
            kwargs=[{"path": str(out), "line": line, "sleep": sleep} for line in lines],
        )
        enqueued.extend(lines)
        if not burst and time.monotonic() - started > seconds / 2:
            burst = many_at_once(server, 20)
        time.sleep(0.25)
    for loop in loops:
        assert loop.wait(timeout=120) == 0
    # Whatever the last calls left: a few more calls, as the next minutes' would be.
    final = []
    for _ in range(10):
        code, body = curl("-X", "POST", "-H", f"Authorization: Bearer {SECRET}", server.url)
        assert code == 200
        final.append(body)
        if body.get("stopped") == "drained" and not TaskRecord.objects.ready().exists():
            break

    calls = [
        line.split()
        for name in "ab"
        for line in (tmp_path / f"{name}.codes").read_text().splitlines()
    ]
    assert len(calls) > seconds  # about two a second
    assert all(call[0] == "200" for call in calls), Counter(call[0] for call in calls)
    bodies = [json.loads(path.read_text()) for path in tmp_path.glob("[ab]-*.json")]
    assert len(bodies) == len(calls) and all(set(body) >= SUMMARY_KEYS for body in bodies)
    # Each batch kept to its budget (plus the task in progress), and each call was answered.
    longest = max(float(body["duration"]) for body in bodies)
    slowest = max(float(call[1]) for call in calls)
    assert longest <= BUDGET + LONGEST_TASK + SLACK, (longest, slowest)
    assert slowest <= BUDGET + LONGEST_TASK + CALL_SLACK, (longest, slowest)

    # Every task ran, once; every call stored its batch log row, as run_due_tasks would.
    assert Counter(out.read_text().split()) == Counter(enqueued)
    assert not TaskRecord.objects.exclude(status="SUCCESSFUL").exists()
    assert BatchRun.objects.count() >= len(calls) + len(burst)
    # The schedule fired every minute it was due, each slot once, from the URL alone.
    fired = TaskRecord.objects.filter(schedule_name="every-minute")
    assert fired.count() >= int(seconds // 60) and fired.count() == len(
        slots.read_text().split() if slots.exists() else []
    )
    # The answers add up to what ran: each call reported its own batch.
    answers = [*bodies, *(body for _, body in burst), *final]
    assert sum(int(body["ran"]) for body in answers) == len(enqueued) + fired.count()
    assert sum(int(body["scheduled"]) for body in answers) == fired.count()
    # Overlapping calls behaved like overlapping cron runs: one worked, the others returned.
    skipped = [body for code, body in burst if body.get("skipped") == "locked"]
    assert all(code == 200 for code, _ in burst) and skipped


def many_at_once(server: Server, count: int) -> list[tuple[int, dict[str, object]]]:
    """Start `count` calls at the same moment; return each one's status and body."""
    processes = [
        subprocess.Popen(
            [
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-w",
                "\n%{http_code}",
                "-X",
                "POST",
                "-H",
                f"X-Cronrunner-Key: {SECRET}",
                server.url,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    answers = []
    for process in processes:
        stdout, _ = process.communicate(timeout=90)
        body, _, code = stdout.rpartition("\n")
        answers.append((int(code), json.loads(body)))
    return answers


def test_each_recipe_and_the_setup_curl_line_run_tasks_on_the_real_server(
    serve: Callable[..., Server], settings: Settings
) -> None:
    server = serve(CRONRUNNER_TEST_TRIGGER_ALLOW_GET="1")
    for name, read in recipes.ALL.items():
        call = read()
        result = tasks.add.enqueue(1, 2)
        url = call.url.replace("$CRONRUNNER_TRIGGER_URL", recipes.EXAMPLE_URL)
        url = server.base + urlsplit(url).path
        if call.shell is not None:
            # The recipe's own command line, with the scheduler's variables set.
            command = call.shell.replace("https://you.pythonanywhere.com/cron/trigger/", url)
            process = subprocess.run(
                ["bash", "-c", command],
                env={
                    **os.environ,
                    "CRONRUNNER_TRIGGER_URL": url,
                    "CRONRUNNER_TRIGGER_SECRET": SECRET,
                },
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert process.returncode == 0, (name, process.stderr)
            body = json.loads(process.stdout)
        else:
            headers = [f"{k}: {v.replace(recipes.SECRET, SECRET)}" for k, v in call.headers.items()]
            code, body = curl("-X", call.method, *[a for h in headers for a in ("-H", h)], url)
            assert code == 200, name
        assert body["ran"] == 1, (name, body)
        result.refresh()
        assert result.status == "SUCCESSFUL", name

    settings.CRONRUNNER_TRIGGER_SECRET = SECRET
    settings.ROOT_URLCONF = "tests.trigger_urls"
    (line,) = [line for line in trigger_lines(server.base) if line.startswith("curl ")]
    tasks.add.enqueue(2, 3)
    process = subprocess.run(
        ["bash", "-c", line],
        env={**os.environ, "CRONRUNNER_TRIGGER_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(process.stdout)["ran"] == 1


def test_bad_input_gets_an_answer_and_runs_nothing(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve()
    result = tasks.add.enqueue(1, 2)
    body_file = tmp_path / "body"
    body_file.write_bytes(b"x" * 10_000_000)
    key = ("-H", f"Authorization: Bearer {SECRET}")
    code, body = curl("-X", "POST", *key, "--data-binary", f"@{body_file}", server.url)
    assert code == 413 and "error" in body
    code, _ = curl("-X", "POST", "-H", f"X-Cronrunner-Key: {'k' * 7000}", server.url)
    assert code == 403
    # Past gunicorn's header limit the server itself refuses, before Django.
    code, _ = curl("-X", "POST", "-H", f"X-Cronrunner-Key: {'k' * 20000}", server.url)
    assert code in (400, 431)
    code, _ = curl("-X", "POST", "-H", "X-Cronrunner-Key: клю́ч-🔑", server.url)
    assert code == 403
    code, _ = curl("-X", "POST", f"{server.url}%D0%BA%F0%9F%94%91{'x' * 2000}/")
    assert code == 403
    code, _ = curl("-X", "POST", server.url)
    assert code == 403
    code, _ = curl(*key, server.url)  # GET is not allowed by default
    assert code == 405
    result.refresh()
    assert result.status == "READY" and not BatchRun.objects.exists()
    assert "Trigger refused: no key from 127.0.0.1" in server.output()
    answers = many_at_once(server, 50)
    assert all(code == 200 for code, _ in answers)
    assert sum(int(body["ran"]) for _, body in answers) == 1  # type: ignore[call-overload]
    result.refresh()
    assert result.status == "SUCCESSFUL"


def test_a_database_that_is_down_is_a_503(serve: Callable[..., Server], tmp_path: Path) -> None:
    unreachable = (
        {"CRONRUNNER_SQLITE_NAME": str(tmp_path / "missing" / "db.sqlite3")}
        if connection.vendor == "sqlite"
        else {"CRONRUNNER_PG_PORT": "1"}
    )
    server = serve(workers=1, **unreachable)
    result = subprocess.run(
        ["curl", "-sS", "-i", "-X", "POST", "-H", f"Authorization: Bearer {SECRET}", server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # text=True has turned the \r\n of HTTP into \n.
    head, _, body = result.stdout.partition("\n\n")
    assert head.startswith("HTTP/1.1 503") and "Retry-After: 60" in head
    assert json.loads(body) == {"error": "the database is unavailable"}
    assert "Trigger: The database 'default' cannot be used" in server.output()


def test_page_views_alone_run_the_tasks_once_per_interval(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    server = serve(
        CRONRUNNER_TEST_VISITOR_URL="http://127.0.0.1:{port}/cron/trigger/",
        CRONRUNNER_TEST_VISITOR_INTERVAL="2",
    )
    out = tmp_path / "ran.txt"
    lines = [f"v{n}" for n in range(6)]
    enqueue_many(
        tasks.append_line, kwargs=[{"path": str(out), "line": line, "sleep": 0.5} for line in lines]
    )
    seconds = 8
    visits = subprocess.run(
        [
            "bash",
            "-c",
            f"end=$((SECONDS + {seconds})); while [ $SECONDS -lt $end ]; do "
            f"curl -sS -o /dev/null -w '%{{http_code}} %{{time_total}}\\n' {server.base}/page/; "
            "sleep 0.1; done",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = [line.split() for line in visits.stdout.splitlines()]
    assert len(answers) > seconds and all(code == "200" for code, _ in answers)
    # Pages are served by the other workers while one runs the batch (3 s of tasks).
    assert max(float(took) for _, took in answers) < 1.5, answers
    wait_for(lambda: not TaskRecord.objects.exclude(status="SUCCESSFUL").exists(), timeout=30)
    assert sorted(out.read_text().split()) == sorted(lines)
    time.sleep(3)  # no visits, no more calls
    assert 2 <= BatchRun.objects.count() <= seconds // 2 + 1


def test_the_readmes_no_cron_section_works_as_written(serve: Callable[..., Server]) -> None:
    section = recipes.readme_no_cron()
    written: dict[str, object] = {}
    exec(section.settings, written)
    # The section's settings and URLconf lines, as a startproject site would get them; the
    # budget is left to the section's request timeout, which gunicorn enforces here.
    server = serve(
        timeout=float(written["CRONRUNNER_TRIGGER_REQUEST_TIMEOUT"]),  # type: ignore[arg-type]
        settings=f"del CRONRUNNER_TRIGGER_MAX_SECONDS\n{section.settings}",
        urls=(
            "from django.urls import path\n"
            "from tests.trigger_urls import page\n\n"
            'urlpatterns = [path("page/", page)]\n\n' + section.urls
        ),
        CRONRUNNER_TRIGGER_SECRET=SECRET,
    )
    result = tasks.add.enqueue(1, 2)
    process = subprocess.run(
        ["bash", "-c", section.curl.replace("https://example.com", server.base)],
        env={**os.environ, "CRONRUNNER_TRIGGER_SECRET": SECRET},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    body = json.loads(process.stdout)
    assert (body["ran"], body["budget"], body["too_long"]) == (1, 25.0, [])
    result.refresh()
    assert result.status == "SUCCESSFUL"


def test_a_task_longer_than_the_request_timeout_is_never_started(
    serve: Callable[..., Server],
) -> None:
    # gunicorn kills a worker whose request outlasts --timeout: had the trigger started the
    # task, the worker would die mid-task, call after call.
    server = serve(
        workers=1,
        timeout=8,
        settings="CRONRUNNER_TRIGGER_REQUEST_TIMEOUT = 8\nCRONRUNNER_TRIGGER_MAX_SECONDS = 3\n",
    )
    path = "tests.testapp.tasks.append_line"
    TaskDuration.objects.create(backend_name="default", task_path=path, samples=[12.0] * 3)
    long = tasks.append_line.enqueue("/dev/null", "long", sleep=12)
    quick = tasks.add.enqueue(1, 2)
    code, body = curl("-X", "POST", "-H", f"X-Cronrunner-Key: {SECRET}", server.url)
    assert code == 200, body
    assert (body["ran"], body.get("too_long"), body["budget"]) == (1, [path], 3.0), body
    long.refresh()
    quick.refresh()
    assert (long.status, quick.status) == ("READY", "SUCCESSFUL")
    assert f"Trigger: {path} typically take longer than the trigger's 3s budget" in (
        server.output()
    )
    assert "WORKER TIMEOUT" not in server.output()


def test_a_sigterm_during_a_call_is_the_workers_own(serve: Callable[..., Server]) -> None:
    # gunicorn's arbiter stops a sync worker with SIGTERM: the worker finishes the request it
    # serves, then exits. The batch must neither take the signal nor stop short.
    server = serve(workers=1)
    for line in ("a", "b"):
        tasks.append_line.enqueue("/dev/null", line, sleep=1.5)
    call = subprocess.Popen(
        [
            "curl",
            "-sS",
            "--max-time",
            "60",
            "-X",
            "POST",
            "-H",
            f"X-Cronrunner-Key: {SECRET}",
            server.url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: TaskRecord.objects.filter(status="RUNNING").exists())
    (claimed_by,) = TaskRecord.objects.filter(status="RUNNING").values_list("claimed_by", flat=True)
    worker = int(str(claimed_by).split(":")[1])
    os.kill(worker, signal.SIGTERM)
    stdout, _ = call.communicate(timeout=60)
    body = json.loads(stdout)
    assert (body["ran"], body["stopped"]) == (2, "drained"), body
    assert set(TaskRecord.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}

    def exited() -> bool:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return True
        return False

    # Its own handler ran: once the answer is sent, the worker leaves; the arbiter replaces it.
    wait_for(exited, timeout=30)
