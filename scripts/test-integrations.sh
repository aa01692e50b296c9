#!/usr/bin/env bash
# The integrations against real third-party programs: nginx (Debian's package) with the files of
# `consulnative pem-files`, httpx and requests (from PyPI, into target/integrations-venv) over the Python HTTP
# adapters and servers, and Ruby's Net::HTTP with the Rack handler (ruby-rack, WEBrick). Installs what it needs,
# builds the library, the dev agent and the CLI (debug), runs bindings/python/integration_tests (pytest) and
# bindings/ruby/integration_test (minitest). Everything stays on loopback; nginx runs from a temporary prefix
# and is stopped by the tests. The last line is `N passed, M failed`; the exit status is non-zero on a failure.
# Arguments go to pytest. CONSULNATIVE_NO_BUILD=1 skips the build.
set -uo pipefail
cd "$(dirname "$0")/.."

need_debs=()
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need_debs+=(nginx)
command -v ruby >/dev/null || need_debs+=(ruby)
ruby -rffi -e 1 2>/dev/null || need_debs+=(ruby-ffi)
ruby -rminitest -e 1 2>/dev/null || need_debs+=(ruby-minitest)
ruby -rwebrick -e 1 2>/dev/null || need_debs+=(ruby-webrick)
ruby -rrack -e 1 2>/dev/null || need_debs+=(ruby-rack)
command -v python3 >/dev/null || need_debs+=(python3 python3-venv)
if [ ${#need_debs[@]} -gt 0 ]; then
  echo "test-integrations: installing ${need_debs[*]} from Debian's packages" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d on build machines stops the package from starting a system nginx; the tests run their own.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_debs[@]}" >/dev/null || exit 1
fi
NGINX_BIN=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${CONSULNATIVE_NO_BUILD:-}" ]; then
  cargo build --quiet -p consulnative-ffi -p consulnative-devagent -p consulnative-cli || exit 1
fi

VENV=target/integrations-venv
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV" || exit 1
"$VENV/bin/python" -c "import pytest, httpx, requests" 2>/dev/null ||
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check pytest httpx requests || exit 1

export CONSULNATIVE_LIB="${CONSULNATIVE_LIB:-$PWD/target/debug/libconsulnative.so}"
export CONSULNATIVE_CLI="${CONSULNATIVE_CLI:-$PWD/target/debug/consulnative}"
export CONSULNATIVE_NGINX="$NGINX_BIN"  # not NGINX: nginx reads that variable for inherited sockets
export PYTHONPATH="$PWD/bindings/python${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p target
start=$(date +%s)

py_log=target/integrations-python.log
timeout 600 "$VENV/bin/python" -X dev -m pytest bindings/python/integration_tests -q -p no:cacheprovider "$@" \
  2>&1 | tee "$py_log"
py_summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$py_log" | tail -n 1)
count() { echo "$1" | grep -oE "[0-9]+ $2" | grep -oE '^[0-9]+' || echo 0; }
py_passed=$(count "$py_summary" passed)
py_failed=$(( $(count "$py_summary" failed) + $(count "$py_summary" error) ))
[ -n "$py_summary" ] || py_failed=$((py_failed + 1))  # pytest died before its summary

rb_log=target/integrations-ruby.log
timeout 300 ruby -w -Ibindings/ruby/lib -Ibindings/ruby/test -e '
  Dir[File.join("bindings/ruby/integration_test", "**", "*_test.rb")].sort.each { |f| require File.expand_path(f) }
' 2>&1 | tee "$rb_log"
rb_summary=$(grep -E '^[0-9]+ runs, ' "$rb_log" | tail -n 1)
rb_runs=$(count "$rb_summary" runs)
rb_failed=$(( $(count "$rb_summary" failures) + $(count "$rb_summary" errors) ))
rb_skipped=$(count "$rb_summary" skips)
[ -n "$rb_summary" ] || rb_failed=$((rb_failed + 1))  # minitest died before its summary

passed=$((py_passed + rb_runs - rb_failed - rb_skipped))
failed=$((py_failed + rb_failed))
echo "integrations took $(( $(date +%s) - start )) s (python: ${py_summary:-no summary}; ruby: ${rb_summary:-no summary})"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
