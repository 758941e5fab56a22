#!/usr/bin/env bash
# Install django-cronrunner into .venv, then show it working in the demo project (example/, SQLite):
# enqueue some real tasks, run one batch of run_due_tasks as cron would, and read the results back.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
install_project "."
PY="$VENV/bin/python"
cd "$REPO_ROOT/example"

# Start from a fresh demo database every time, so the output below is the whole story.
rm -rf var
mkdir -p var

# Bold headings in a terminal only: a pipe or a file gets plain text, without escape codes.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    BOLD=$'\033[1m' PLAIN=$'\033[0m'
else
    BOLD='' PLAIN=''
fi
step() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$PLAIN"; }

step "python manage.py migrate"
"$PY" manage.py migrate --verbosity 0
echo "database ready: example/var/demo.sqlite3"

step "python manage.py enqueue_demo_tasks    (what your views would do)"
"$PY" manage.py enqueue_demo_tasks

step "python manage.py run_due_tasks --max-seconds 20 -v 2    (what cron runs every minute)"
"$PY" manage.py run_due_tasks --max-seconds 20 -v 2

step "python manage.py show_demo_results    (results, read back with get_result())"
"$PY" manage.py show_demo_results

step "python manage.py cronrunner_status"
"$PY" manage.py cronrunner_status

printf '\nThe email above went to the console backend; files are in example/var/.\n'
