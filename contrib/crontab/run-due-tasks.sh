#!/bin/sh
# Run one batch of django-cronrunner from cron on hosts that need `cd`, a virtualenv and an
# environment file first. Set SITE_DIR (and VENV, ENV_FILE if they live elsewhere).
set -eu
SITE_DIR="${SITE_DIR:-/srv/site}"
VENV="${VENV:-$SITE_DIR/.venv}"
ENV_FILE="${ENV_FILE:-$SITE_DIR/.env}"

cd "$SITE_DIR"
if [ -f "$ENV_FILE" ]; then
    set -a
    . "$ENV_FILE"
    set +a
fi
# exec, so that a signal from cron or the shell reaches the runner itself.
exec "$VENV/bin/python" manage.py run_due_tasks --max-seconds "${MAX_SECONDS:-50}" "$@"
