# Sourced by the other scripts: repository root, and a uv to run.
#
# uv comes from PATH, or else from a private virtual environment under tools/uv (made
# here with the standard library's venv, on Debian after installing python3-venv).
# Nothing is ever installed into the system's or the user's own Python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export UV_PROJECT_ENVIRONMENT="$ROOT/.venv"
# uv's download cache stays in the repository too (git-ignored), unless the caller chose one.
export UV_CACHE_DIR="${UV_CACHE_DIR:-$ROOT/tools/uv-cache}"
# Set by `python -m uv`; it would make nested `uv pip` calls ignore VIRTUAL_ENV and
# install into that interpreter instead of the environment they are given.
unset UV_INTERNAL__PARENT_INTERPRETER

_bootstrap_uv() {
    local venv="$ROOT/tools/uv"
    if [ -x "$venv/bin/uv" ]; then
        return
    fi
    local python
    python="$(command -v python3 || command -v python || true)"
    if [ -z "$python" ]; then
        echo "scripts: Python 3.10+ is needed (python3 not found)" >&2
        exit 1
    fi
    if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c "import ensurepip" >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            echo "scripts: apt-get install python3-venv (to make tools/uv)" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        else
            echo "scripts: install uv (https://docs.astral.sh/uv/) or your Python's venv module (python3-venv)" >&2
            exit 1
        fi
    fi
    echo "scripts: installing uv into tools/uv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir uv
}

if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    _bootstrap_uv
    UV=("$ROOT/tools/uv/bin/uv")
fi
