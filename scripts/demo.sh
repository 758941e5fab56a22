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

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

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
