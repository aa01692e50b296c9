#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: the Rust suites (the core's unit tests, the dev agent binary's
# HTTP tests, the C ABI against the dev agent binary over real sockets, openssl interop), checks that the committed
# C header is fresh and that the production library holds no dev agent, the C examples under valgrind and
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

step "build the workspace (debug): library, dev agent binary, tests"
cargo build --workspace --all-targets --locked 2>&1 | tail -n 3

step "the committed C header matches the C ABI crate"
cargo run --quiet --locked -p xtask -- header --check

step "the production library holds no dev agent"
bash scripts/check-structure.sh target/debug/libconsulnative.so

step "Rust tests: core units (agent client, TLS, watches), dev agent binary, C ABI against it, openssl interop"
mkdir -p target
if ! cargo test --workspace --locked >target/cargo-test.log 2>&1; then
  grep -E '^(---- |failures:|test .* FAILED)|panicked' target/cargo-test.log | head -n 40 >&2 || true
  tail -n 60 target/cargo-test.log >&2
  exit 1
fi
grep -E '^ +Running|^test result' target/cargo-test.log | sed -E 's/^ +//'

step "the dev agent against third-party Consul clients (py-consul, python-consul2, cryptography)"
bash scripts/test-devagent-clients.sh

for suite in c python ruby; do
  if [ -f "scripts/test-$suite.sh" ]; then
    step "$suite tests"
    bash "scripts/test-$suite.sh"
  fi
done
step "integrations with third-party programs: nginx on the PEM files, httpx, requests, WSGI/ASGI, Net::HTTP, Rack"
bash scripts/test-integrations.sh

step "packages as a new user meets them: wheel, gem, C tarball with pkg-config (one release build)"
bash scripts/test-packaging.sh

step "the docs against the code: keys, result codes, environment variables, snippets, links"
bash scripts/check-docs.sh

step "benchmark smoke for the bindings (figures are produced; no thresholds)"
for lang in python ruby; do
  BENCH_SMOKE=1 CONSULNATIVE_LIB="$PWD/target/debug/libconsulnative.so" bash "benches/bench-$lang.sh" \
    | grep -E '^\| (handshakes|echo)' | cut -c1-110
done

step "all tests passed"
