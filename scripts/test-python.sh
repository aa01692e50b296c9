#!/usr/bin/env bash
# Builds the library and the dev agent binary, prepares a venv with pytest, and runs the Python binding's tests
# under `python -X dev`.
set -euo pipefail
cd "$(dirname "$0")/.."

# CONSULNATIVE_NO_BUILD=1 skips the build (e.g. CONSULNATIVE_LIB pointing at a prebuilt library, with the
# consulnative-dev-agent binary beside it or in CONSULNATIVE_DEV_AGENT).
[ -n "${CONSULNATIVE_NO_BUILD:-}" ] || cargo build --quiet
PY="${PYTHON:-python3}"
VENV=target/python-venv
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import pytest" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pytest
fi
export PYTHONPATH="$PWD/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
export CONSULNATIVE_LIB="${CONSULNATIVE_LIB:-$PWD/target/debug/libconsulnative.so}"
exec "$VENV/bin/python" -X dev -m pytest bindings/python/tests -q "$@"
