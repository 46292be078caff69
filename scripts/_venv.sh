# Shared by scripts/*: make .venv with a Python >= 3.10 and install the package
# editable plus the named dependency groups. Re-running is cheap: pip skips what is there.
ensure_venv() {
    local py="${PYTHON:-}"
    if [[ -z "$py" ]]; then
        for candidate in python3 python3.13 python3.12 python3.11 python3.10; do
            if command -v "$candidate" >/dev/null 2>&1 \
                && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
                py="$candidate"
                break
            fi
        done
    fi
    if [[ -z "$py" ]]; then
        echo "asgisession needs Python 3.10 or newer; none was found on PATH (set PYTHON=...)." >&2
        exit 1
    fi
    if [[ ! -x .venv/bin/python ]]; then
        "$py" -m venv .venv
    fi
    local args=()
    for group in "$@"; do
        args+=(--group "$group")
    done
    echo "== installing into .venv (log: .venv/pip.log)"
    # Dependency groups (PEP 735) need pip >= 25.1.
    if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade "pip>=25.1" \
        && .venv/bin/python -m pip install --disable-pip-version-check -e . "${args[@]}"; } \
        >.venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        echo "pip install failed (output above)." >&2
        exit 1
    fi
}
