#!/usr/bin/env bash
# House rules, run by CI after the tests: formatting, clippy with warnings denied (undocumented unsafe blocks
# included), mypy --strict on the Python package, Ruby's own warnings, and `cargo package` of each publishable
# crate. Installs mypy into target/python-venv and Ruby from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check

step "clippy (warnings denied)"
cargo clippy --workspace --all-targets --locked -- -D warnings -D clippy::undocumented_unsafe_blocks

step "mypy --strict on the Python binding"
VENV=target/python-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# httpx and requests (with its stubs): the optional HTTP adapters are type-checked against them.
"$VENV/bin/python" -c "import mypy, httpx, requests" 2>/dev/null ||
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check mypy httpx requests types-requests
"$VENV/bin/python" -m mypy --strict bindings/python/consulnative

step "ruby -w: no warnings from the Ruby binding's sources"
command -v ruby >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ruby ruby-ffi >/dev/null; }
warnings=$(find bindings/ruby examples/ruby benches/lang -name '*.rb' -print0 | xargs -0 -n1 ruby -wc 2>&1 | grep -v 'Syntax OK' || true)
if [ -n "$warnings" ]; then echo "$warnings" >&2; exit 1; fi
echo "ok"

step "API references (rustdoc, pdoc, YARD, the C header) build from the code"
bash scripts/docs.sh

step "cargo package (core, dev agent, C ABI)"
mkdir -p target
# cargo unpacks the packages it verifies into its registry cache by name and version: a copy left by an earlier
# run of the same version would be compiled instead of this one. Remove our own crates' copies first.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$cargo_home"/registry/src/*/consulnative-{core,devagent,ffi}-[0-9]* \
  "$cargo_home"/registry/cache/*/consulnative-{core,devagent,ffi}-[0-9]*.crate
if ! cargo package -p consulnative-core -p consulnative-devagent -p consulnative-ffi --locked --allow-dirty \
    >target/cargo-package.log 2>&1; then
  grep -v "^warning: ignoring \(test\|benchmark\)" target/cargo-package.log | tail -n 30 >&2
  exit 1
fi
grep -E "Packaged|Finished" target/cargo-package.log
