#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: the Rust suites (the C ABI against the embedded dev agent over
# real sockets, openssl interop), a check that the committed C header is fresh, the C examples under valgrind and
# AddressSanitizer, the Python binding (pytest, from PyPI into a venv) and the Ruby binding (minitest, Ruby from
# Debian's packages). Every step installs or starts what it needs; one shared target/ keeps builds incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

need_debs=()
command -v gcc >/dev/null || need_debs+=(gcc)
command -v valgrind >/dev/null || need_debs+=(valgrind)
command -v openssl >/dev/null || need_debs+=(openssl)
command -v python3 >/dev/null || need_debs+=(python3 python3-venv)
if [ ${#need_debs[@]} -gt 0 ]; then
  step "installing ${need_debs[*]} from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}"
fi

step "build (debug) and regenerate include/consulnative.h"
cargo build --all-targets --locked 2>&1 | tail -n 3
if git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --exit-code --stat -- include/consulnative.h; then
  echo "include/consulnative.h is stale: the build regenerated it from src/ffi. Review the diff and commit it." >&2
  exit 1
fi

step "Rust tests: unit, dev agent, agent client, TLS, C ABI against the dev agent, openssl interop"
mkdir -p target
if ! cargo test --locked >target/cargo-test.log 2>&1; then
  grep -E '^(---- |failures:|test .* FAILED)|panicked' target/cargo-test.log | head -n 40 >&2 || true
  tail -n 60 target/cargo-test.log >&2
  exit 1
fi
grep -E '^ +Running|^test result' target/cargo-test.log | sed -E 's/^ +//'

for suite in c python ruby; do
  if [ -f "scripts/test-$suite.sh" ]; then
    step "$suite tests"
    bash "scripts/test-$suite.sh"
  fi
done
step "benchmark smoke for the bindings (figures are produced; no thresholds)"
for lang in python ruby; do
  BENCH_SMOKE=1 CONSULNATIVE_LIB="$PWD/target/debug/libconsulnative.so" bash "benches/bench-$lang.sh" \
    | grep -E '^\| (handshakes|echo)' | cut -c1-110
done

step "all tests passed"
