#!/usr/bin/env bash
# The quick start: builds libconsulnative (release), compiles the C demo against it and runs it.
# The demo starts an embedded Consul dev agent, so no Consul is needed. Exit status is the demo's.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo build --release" >&2
cargo build --release --quiet

echo "==> compiling examples/c/demo.c" >&2
make --no-print-directory -s -C examples/c \
    LIBDIR="$PWD/target/release" OUT="$PWD/target/c-examples/release" \
    "$PWD/target/c-examples/release/demo" "$PWD/target/c-examples/release/lib/libconsulnative.so.0"

echo "==> running the demo" >&2
exec ./target/c-examples/release/demo
