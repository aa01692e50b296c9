#!/usr/bin/env bash
# Runs third-party Consul clients (py-consul, python-consul2) and Python's `cryptography` against the dev agent:
# devagent/tests/clients/. Builds nothing: it uses target/debug/consulnative-dev-agent (build it first with
# `cargo build -p consulnative-devagent`, or point CONSULNATIVE_DEV_AGENT at a binary). The clients live in their
# own venv, target/devagent-clients-venv; python-consul2 installs a package named `consul` like py-consul does,
# so it goes into a directory of its own that the tests import it from. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
VENV=target/devagent-clients-venv
CONSUL2="$VENV/python-consul2"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import consul, cryptography, pytest, requests" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check py-consul cryptography pytest requests
fi
if [ ! -f "$CONSUL2/consul/__init__.py" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$CONSUL2" \
        python-consul2 six
fi
export PYTHON_CONSUL2_PATH="$PWD/$CONSUL2"
exec "$VENV/bin/python" -m pytest devagent/tests/clients -q -p no:cacheprovider "$@"
