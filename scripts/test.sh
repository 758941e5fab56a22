#!/usr/bin/env bash
# Install the project and its test tools into .venv, then run ruff, mypy and the test suite on
# SQLite, PostgreSQL and MariaDB. Extra arguments go to every pytest run (e.g. -k lock, -x).
# Under CI=true the PostgreSQL and MariaDB suites are required; otherwise an unreachable server
# is skipped with a loud notice.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
cd "$REPO_ROOT"

CI="${CI:-false}"
PG_HOST="${CRONRUNNER_PG_HOST:-127.0.0.1}"
PG_PORT="${CRONRUNNER_PG_PORT:-5432}"
MYSQL_HOST="${CRONRUNNER_MYSQL_HOST:-127.0.0.1}"
MYSQL_PORT="${CRONRUNNER_MYSQL_PORT:-3306}"
SUMMARY=()
FAILED=0

is_root() { [ "$(id -u)" = 0 ]; }
required() { [ "$CI" = true ]; }

# mysqlclient compiles against Debian's MariaDB headers, found through pkg-config.
ensure_mysql_headers() {
    if command -v pkg-config > /dev/null 2>&1 \
        && { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; } 2> /dev/null; then
        return 0
    fi
    if is_root && command -v apt-get > /dev/null 2>&1; then
        echo "==> installing pkg-config and libmariadb-dev (needed to build mysqlclient)"
        apt_install pkg-config libmariadb-dev
        return 0
    fi
    return 1
}

# The field tests use the real thing, from Debian: CI installs what is missing (as root);
# elsewhere each such test skips itself when its tool is absent.
APT_UPDATED=false
apt_install() {  # package...
    if [ "$APT_UPDATED" = false ]; then
        apt-get -o DPkg::Lock::Timeout=600 update -qq > /dev/null
        APT_UPDATED=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$@" > /dev/null
}
ensure_tools() {  # purpose, shell test that is true when they are there, package...
    local purpose="$1" present="$2"
    shift 2
    bash -c "$present" > /dev/null 2>&1 && return 0
    required && is_root && command -v apt-get > /dev/null 2>&1 || return 0
    echo "==> installing $* ($purpose)"
    apt_install "$@"
}
ensure_tools "the admin's browser test" "[ -x /usr/bin/chromedriver ] && [ -x /usr/bin/chromium ]" \
    chromium chromium-driver
# axe-core, the browser test's accessibility check, comes from the npm registry through npm.
ensure_tools "the admin's accessibility check" "command -v npm" npm
ensure_tools "the HTTP trigger's field test" "command -v curl" curl
# A private cron daemon in a mount namespace of its own (unshare), and logrotate for contrib/.
ensure_tools "the real-cron and contrib tests" \
    "[ -x /usr/sbin/cron ] && [ -x /usr/sbin/logrotate ] && command -v unshare" \
    cron logrotate util-linux

# Hosts whose clocks disagree (libfaketime), a real PgBouncer, and network namespaces (ip netns).
ensure_tools "the fleet field tests" "command -v faketime && command -v pgbouncer && command -v ip" \
    faketime libfaketime pgbouncer iproute2

MYSQL_DRIVER=true
if ! ensure_mysql_headers; then
    if required; then
        echo "error: mysqlclient needs pkg-config and libmariadb-dev; install them (as root)." >&2
        exit 1
    fi
    echo "!!! SKIPPING MariaDB: pkg-config/libmariadb-dev missing and not root to install them"
    MYSQL_DRIVER=false
fi
if [ "$MYSQL_DRIVER" = true ]; then
    install_project ".[test,postgresql,mysql,docs]"
else
    install_project ".[test,postgresql,docs]"
fi
PY="$VENV/bin/python"

server_up() {  # vendor
    case "$1" in
        postgresql) "$PY" - "$PG_HOST" "$PG_PORT" <<'PYEOF' 2> /dev/null ;;
import sys, psycopg
psycopg.connect(host=sys.argv[1], port=sys.argv[2], user="postgres", dbname="postgres", connect_timeout=3).close()
PYEOF
        mariadb) "$PY" - "$MYSQL_HOST" "$MYSQL_PORT" <<'PYEOF' 2> /dev/null ;;
import sys, MySQLdb
MySQLdb.connect(host=sys.argv[1], port=int(sys.argv[2]), user="root", connect_timeout=3).close()
PYEOF
    esac
}

start_server() {  # vendor: try to start a local server that is down (root only)
    is_root || return 0
    case "$1" in
        postgresql)
            command -v pg_ctlcluster > /dev/null 2>&1 && [ -d /etc/postgresql ] || return 0
            echo "==> starting PostgreSQL"
            pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
            ;;
        mariadb)
            [ -x /usr/sbin/mariadbd ] || return 0
            echo "==> starting MariaDB"
            start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
            ;;
    esac
    for _ in $(seq 30); do
        server_up "$1" && return 0
        sleep 1
    done
}

record_step() {  # label, exit status, seconds
    if [ "$2" = 0 ]; then
        SUMMARY+=("passed   $1 ($3s)")
    else
        # pytest exits 5 when it collected nothing: a suite that silently vanished is a failure.
        SUMMARY+=("FAILED   $1 (exit $2, $3s)")
        FAILED=1
    fi
}

run_step() {  # label, command...
    local label="$1"
    shift
    local started=$SECONDS
    echo "==> $label"
    local status=0
    "$@" || status=$?
    record_step "$label" "$status" "$((SECONDS - started))"
}

run_step "ruff check" "$PY" -m ruff check .
run_step "ruff format --check" "$PY" -m ruff format --check .
run_step "mypy" "$PY" -m mypy
run_step "import layers (lint-imports)" "$VENV/bin/lint-imports" --no-cache
# Tests that restart a database server run alone at the end: beside the other steps they would
# cut off every connection those have to the server.
MAIN_TESTS="not field and not server_restart"
run_step "pytest on SQLite" env CRONRUNNER_TEST_DB=sqlite "$PY" -m pytest tests -m "$MAIN_TESTS" "$@"

# The rest runs side by side (two cores, and suites that mostly wait on servers and
# subprocesses); each one's output is printed whole once it ends.
LOG_DIR="$(mktemp -d)"
BACKGROUND=()
start_step() {  # label, command...: run in the background; finish_steps reports it
    local label="$1"
    shift
    local log="$LOG_DIR/${#BACKGROUND[@]}.log"
    (
        started=$SECONDS
        status=0
        "$@" || status=$?
        echo "$status $((SECONDS - started))" > "$log.result"
    ) > "$log" 2>&1 &
    BACKGROUND+=("$label|$!|$log")
    echo "==> $label (running in the background)"
}
finish_steps() {
    local entry label pid log status took
    for entry in "${BACKGROUND[@]}"; do
        IFS='|' read -r label pid log <<< "$entry"
        wait "$pid" || true
        echo "==> $label"
        cat "$log"
        read -r status took < "$log.result" || { status=1; took=0; }
        record_step "$label" "$status" "$took"
    done
    BACKGROUND=()
}

FIELD_VENDORS=(sqlite)
SERVER_TESTS=(tests/django_cronrunner)
[ -d tests/e2e ] && SERVER_TESTS+=(tests/e2e)
[ -d tests/faults ] && SERVER_TESTS+=(tests/faults)
for vendor in postgresql mariadb; do
    if [ "$vendor" = mariadb ] && [ "$MYSQL_DRIVER" = false ]; then
        SUMMARY+=("SKIPPED  pytest on MariaDB (no driver)")
        continue
    fi
    server_up "$vendor" || start_server "$vendor"
    if ! server_up "$vendor"; then
        if required; then
            SUMMARY+=("FAILED   pytest on $vendor (server unreachable; required under CI=true)")
            FAILED=1
        else
            echo "!!! SKIPPING $vendor: no server reachable (set CI=true to make this an error)"
            SUMMARY+=("SKIPPED  pytest on $vendor (server unreachable)")
        fi
        continue
    fi
    start_step "pytest on $vendor" env CRONRUNNER_TEST_DB="$vendor" \
        "$PY" -m pytest "${SERVER_TESTS[@]}" -m "$MAIN_TESTS" "$@"
    FIELD_VENDORS+=("$vendor")
done

# Slow tests against the real thing (cron ticks, browsers, poolers, network cuts) mostly wait, so
# they run beside the database suites, one step per database, each test choosing its vendors.
# Their own test databases keep them out of the database suites' way.
for vendor in "${FIELD_VENDORS[@]}"; do
    start_step "field tests on $vendor" env CRONRUNNER_TEST_DB="$vendor" \
        CRONRUNNER_PG_TEST_NAME=test_cronrunner_field CRONRUNNER_MYSQL_TEST_NAME=test_cronrunner_field \
        "$PY" -m pytest tests -m "field and not server_restart" "$@"
done

# The compatibility corner the main run does not cover: Django 5.2 LTS through the backport on
# the oldest Python, the admin pages on the admin styles of Django 5.2 and 6.0 (the field tests
# above cover 6.1; screenshots in artifacts/screenshots/<Django version>/), and the oldest
# backport on the newest Django. `nox -l` lists the rest.
OLDEST_PYTHON=3.13
compgen -G "${PYENV_ROOT:-$HOME/.pyenv}/versions/3.11.*" > /dev/null && OLDEST_PYTHON=3.11
ADMIN_BROWSER_TEST=tests/e2e/test_admin_browser.py
compatibility() {
    "$VENV/bin/nox" -s "sqlite(python='$OLDEST_PYTHON', django='5.2')" -- \
        tests/cronrunner tests/django_cronrunner tests/test_project.py "$ADMIN_BROWSER_TEST" \
        && "$VENV/bin/nox" -s "sqlite(python='3.13', django='6.0')" -- "$ADMIN_BROWSER_TEST" \
        && "$VENV/bin/nox" -s "backport(backport='0.9')"
}
start_step "Django 5.2 + backport on Python $OLDEST_PYTHON; admin pages on 5.2 and 6.0; django-tasks 0.9 (nox)" \
    compatibility
finish_steps

for vendor in "${FIELD_VENDORS[@]}"; do
    [ "$vendor" = postgresql ] || continue
    run_step "server restarts on $vendor" env CRONRUNNER_TEST_DB="$vendor" \
        "$PY" -m pytest tests -m server_restart "$@"
done

echo
echo "==> summary"
printf '    %s\n' "${SUMMARY[@]}"
exit "$FAILED"
