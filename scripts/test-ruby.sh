#!/usr/bin/env bash
# Builds libconsulnative (debug) and runs the Ruby binding's minitest suite against the consulnative-dev-agent
# binary built beside it (or CONSULNATIVE_DEV_AGENT). CONSULNATIVE_NO_BUILD=1 skips the build (with CONSULNATIVE_LIB
# pointing at a prebuilt library).
# On a fresh Debian machine it first installs ruby, ruby-ffi and ruby-minitest with apt-get (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ruby -rffi -rminitest -e 1 >/dev/null 2>&1; then
  echo "test-ruby: installing ruby, ruby-ffi, ruby-minitest from Debian packages" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ruby ruby-ffi ruby-minitest >/dev/null
  ruby -rffi -rminitest -e 1
fi

[ -n "${CONSULNATIVE_NO_BUILD:-}" ] || cargo build --quiet
export CONSULNATIVE_LIB="${CONSULNATIVE_LIB:-$PWD/target/debug/libconsulnative.so}"

# A failing test exits non-zero through minitest; the summary line ("N runs, N assertions, 0 failures, 0 errors")
# is printed either way.
exec timeout 300 ruby -w -Ibindings/ruby/lib -Ibindings/ruby/test -e '
  Dir[File.join("bindings/ruby/test", "**", "*_test.rb")].sort.each { |f| require File.expand_path(f) }
' -- "$@"
