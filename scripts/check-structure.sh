#!/usr/bin/env bash
# Checks what the production library links and exports: no dev agent (no `consulnative_dev_agent_*` export, no
# HTTP server, no certificate generator), and every export carries the consulnative_ prefix.
#   bash scripts/check-structure.sh [path/to/libconsulnative.so]
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${1:-target/debug/libconsulnative.so}
fail=0

exports=$(nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}')
if grep -q '^consulnative_dev_agent_' <<<"$exports"; then
  echo "FAIL: $lib exports dev agent functions:" >&2
  grep '^consulnative_dev_agent_' <<<"$exports" >&2
  fail=1
fi
stray=$(grep -v '^consulnative_' <<<"$exports" | grep -v '^rust_eh_personality$' || true)
if [ -n "$stray" ]; then
  echo "FAIL: $lib exports functions without the consulnative_ prefix:" >&2
  echo "$stray" >&2
  fail=1
fi

# The C ABI crate's normal (non-dev) dependency tree.
tree=$(cargo tree --locked -p consulnative-ffi -e normal --prefix none)
for banned in hyper rcgen http-body-util consulnative-devagent; do
  if grep -q "^$banned v" <<<"$tree"; then
    echo "FAIL: the C ABI crate depends on $banned" >&2
    fail=1
  fi
done

[ "$fail" = 0 ] || exit 1
echo "ok: $(wc -l <<<"$exports") exports, all consulnative_*; no dev agent export; no hyper, rcgen or dev agent in the library's dependencies"
