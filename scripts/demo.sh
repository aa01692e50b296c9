#!/usr/bin/env bash
# The quick start: builds libconsulnative and the dev agent binary (release), compiles the C demo against the
# library and runs it. The demo runs target/release/consulnative-dev-agent as a child process (or the binary named
# by CONSULNATIVE_DEV_AGENT, which wins), so no Consul is needed. Exit status is the demo's.
# CONSULNATIVE_NO_BUILD=1 skips cargo (target/release is already built).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${CONSULNATIVE_NO_BUILD:-}" ]; then
    echo "==> cargo build --release (the library and the dev agent binary)" >&2
    cargo build --release --quiet
fi

echo "==> compiling examples/c/demo.c" >&2
make --no-print-directory -s -C examples/c \
    LIBDIR="$PWD/target/release" OUT="$PWD/target/c-examples/release" \
    "$PWD/target/c-examples/release/demo" "$PWD/target/c-examples/release/lib/libconsulnative.so.0"

echo "==> running the demo" >&2
exec ./target/c-examples/release/demo "$PWD/target/release/consulnative-dev-agent"
