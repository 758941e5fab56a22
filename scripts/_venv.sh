# Sourced by scripts/demo.sh and scripts/test.sh: find Python >= 3.12, make .venv, install the project.
# Usage: install_project "<pip extras spec, e.g. .[test]>"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"

find_python() {
    local candidates=()
    if [ -f "$REPO_ROOT/.python-version" ]; then
        local wanted
        wanted="$(tr -d '[:space:]' < "$REPO_ROOT/.python-version")"
        candidates+=("${PYENV_ROOT:-$HOME/.pyenv}/versions/$wanted/bin/python")
        # ".python-version" may name a minor version (3.13) that pyenv has as 3.13.x.
        for found in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$wanted".*/bin/python; do
            candidates+=("$found")
        done
    fi
    candidates+=(python3.13 python3.12 python3.14 python3)
    for candidate in "${candidates[@]}"; do
        if command -v "$candidate" > /dev/null 2>&1 \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2> /dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: django-cronrunner needs Python 3.12 or newer (Django 6); none was found." >&2
    echo "       Install one (e.g. 'pyenv install 3.13') and run this again." >&2
    return 1
}

install_project() {
    local spec="$1"
    local stamp="$VENV/.installed-$(echo "$spec" | tr -c 'a-z0-9' '_')"
    if [ ! -x "$VENV/bin/python" ]; then
        local python
        python="$(find_python)"
        echo "==> creating .venv with $("$python" --version)"
        "$python" -m venv "$VENV"
    fi
    # The plain project is in every spec with extras: an up-to-date install of one will do.
    if [ "$spec" = "." ]; then
        local other
        for other in "$VENV"/.installed-*; do
            [ -f "$other" ] && [ ! "$REPO_ROOT/pyproject.toml" -nt "$other" ] && stamp="$other"
        done
    fi
    # Reinstall only when pyproject.toml changed since the last install of this spec.
    if [ ! -f "$stamp" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$stamp" ]; then
        echo "==> installing $spec into .venv"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip || return 1
        (cd "$REPO_ROOT" && "$VENV/bin/python" -m pip install --quiet -e "$spec") || return 1
        touch "$stamp"
    fi
}
