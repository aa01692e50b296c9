#!/usr/bin/env bash
# Builds the C examples against the debug library and runs them the way C users will:
#   (a) the demo under valgrind (memory errors and definite leaks fail; "possibly lost"/"still reachable" from the
#       runtime's threads do not), (b) the demo and null_args_test built with -fsanitize=address,undefined,
#       LeakSanitizer on, (c) echo_server + echo_client as two processes against the dev agent binary,
#       (d) null_args_test (every export with NULL/invalid arguments) under valgrind.
# The demo and null_args_test start the dev agent binary themselves (examples/c/dev_agent.c), found through
# CONSULNATIVE_DEV_AGENT, which this script sets.
# Last line: `c-tests: N passed, M failed`; exit status 0 only when nothing failed.
#
# Environment (all optional):
#   CONSULNATIVE_NO_BUILD=1   skip `cargo build` (use a library and agent built elsewhere)
#   LIBDIR                    directory of libconsulnative.so            (default: target/debug)
#   INCLUDE                   directory of consulnative.h                (default: include)
#   CONSULNATIVE_DEV_AGENT    the consulnative-dev-agent binary          (default: target/debug/consulnative-dev-agent)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
LIBDIR=${LIBDIR:-$ROOT/target/debug}
INCLUDE=${INCLUDE:-$ROOT/include}
AGENT=${CONSULNATIVE_DEV_AGENT:-$ROOT/target/debug/consulnative-dev-agent}
export CONSULNATIVE_DEV_AGENT=$AGENT
DBG=$ROOT/target/c-examples/debug
ASAN=$ROOT/target/c-examples/asan
WORK=$(mktemp -d "${TMPDIR:-/tmp}/consulnative-c-tests.XXXXXX")
PIDS=()
passed=0
failed=0

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() { failed=$((failed + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && [ -f "$2" ] && sed 's/^/       | /' "$2" | tail -40; }
# run NAME LOG CMD...: one test, passing when CMD exits 0; its output goes to LOG (shown on failure).
run() {
    local name=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name (exit $?)" "$log"; fi
}
# Waits up to $2 seconds for file $1 to be non-empty.
wait_file() { for _ in $(seq $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }

if [ -n "${CONSULNATIVE_NO_BUILD:-}" ]; then
    echo "==> cargo build skipped (CONSULNATIVE_NO_BUILD)"
else
    echo "==> cargo build (debug)"
    cargo build --quiet || { echo "c-tests: 0 passed, 1 failed"; exit 1; }
fi
if [ ! -x "$AGENT" ]; then
    echo "FAIL - dev agent binary $AGENT is not an executable file (set CONSULNATIVE_DEV_AGENT)"
    echo "c-tests: 0 passed, 1 failed"
    exit 1
fi
echo "    library $LIBDIR, header $INCLUDE, dev agent $AGENT"

echo "==> building the C examples (plain and with AddressSanitizer/UBSan)"
# -B: the binaries may have been built against another LIBDIR/INCLUDE, which make cannot tell from timestamps.
MAKEVARS=(-B LIBDIR="$LIBDIR" INCLUDE="$INCLUDE")
run "build examples against $LIBDIR" "$WORK/build.log" make -s -C examples/c "${MAKEVARS[@]}" OUT="$DBG"
run "build examples with -fsanitize=address,undefined" "$WORK/build-asan.log" \
    make -s -C examples/c "${MAKEVARS[@]}" SAN=1 OUT="$ASAN"

# ---- (a) + (d): valgrind ----------------------------------------------------------------------------------------
# valgrind.supp holds two false positives of ring's AES-GCM assembly (see the file); nothing else is suppressed.
vg_summary() { # the numbers behind a valgrind run, for the log reader
    grep -E "ERROR SUMMARY|definitely lost" "$1" | sed 's/^==[0-9]*== */       valgrind: /' | head -2
}
VGFULL=(valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40
        --suppressions="$ROOT/examples/c/valgrind.supp")

echo "==> (a) demo under valgrind"
run "demo under valgrind: no memory errors, no definite leaks" "$WORK/vg-demo.log" "${VGFULL[@]}" "$DBG/demo"
vg_summary "$WORK/vg-demo.log"

echo "==> (d) null_args_test under valgrind"
run "null_args_test under valgrind: every export rejects NULL/invalid arguments" "$WORK/vg-null.log" \
    env RUST_BACKTRACE=0 "${VGFULL[@]}" "$DBG/null_args_test"
vg_summary "$WORK/vg-null.log"
grep -E "^null_args_test:|^KNOWN BUG" "$WORK/vg-null.log" | sed 's/^/       /'

# ---- (b) AddressSanitizer + UBSan, LeakSanitizer on ---------------------------------------------------------------
# The Rust library is not instrumented, but its malloc/free go through ASan's interceptors, so LeakSanitizer sees
# Rust allocations too. Memory the runtime keeps in globals until exit is reachable, hence not reported; a run is
# expected to end with no leak report at all, and any report fails it (no suppressions).
echo "==> (b) demo and null_args_test under AddressSanitizer"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=98 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run "demo under ASan+UBSan+LSan" "$WORK/asan-demo.log" "$ASAN/demo"
run "null_args_test under ASan+UBSan+LSan" "$WORK/asan-null.log" env RUST_BACKTRACE=0 "$ASAN/null_args_test"
if grep -q "LeakSanitizer\|AddressSanitizer\|runtime error" "$WORK"/asan-*.log; then
    fail "sanitizer reports in ASan logs" "$WORK/asan-demo.log"
else
    pass "no sanitizer report in the ASan runs (leaks: 0)"
fi

# ---- (c) echo_server + echo_client, two processes, against the dev agent binary -----------------------------------
echo "==> (c) echo_server and echo_client against consulnative-dev-agent"
"$AGENT" --http-addr 127.0.0.1:0 --addr-file "$WORK/agent.addr" \
    >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
if wait_file "$WORK/agent.addr" 20; then
    export CONSUL_HTTP_ADDR
    CONSUL_HTTP_ADDR=$(head -1 "$WORK/agent.addr")
    pass "dev agent started at $CONSUL_HTTP_ADDR"

    # The ASan builds: the two-process run is also a sanitizer run of the examples users copy.
    "$ASAN/echo_server" echo 127.0.0.1:0 "$WORK/server.addr" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    PIDS+=($SERVER)
    if wait_file "$WORK/server.addr" 30; then
        SERVER_ADDR=$(head -1 "$WORK/server.addr")
        pass "echo_server listening on $SERVER_ADDR"
        printf 'hello\nconnect native\n' >"$WORK/lines"
        printf 'echo: hello\necho: connect native\n' >"$WORK/want"

        run "echo_client dials echo by address and gets every line back" "$WORK/client1.log" \
            bash -c "'$ASAN/echo_client' web echo '$SERVER_ADDR' <'$WORK/lines' >'$WORK/got1' && diff '$WORK/want' '$WORK/got1'"
        run "echo_client dials echo through catalog discovery" "$WORK/client2.log" \
            bash -c "'$ASAN/echo_client' web echo <'$WORK/lines' >'$WORK/got2' && diff '$WORK/want' '$WORK/got2'"
        run "echo_client refuses a server that is not the expected service" "$WORK/client3.log" \
            bash -c "! '$ASAN/echo_client' web db '$SERVER_ADDR' </dev/null 2>'$WORK/err3' && cat '$WORK/err3' && grep -q 'identity mismatch' '$WORK/err3'"

        curl -fsS -X PUT --data '{"Action":"deny"}' \
            "http://$CONSUL_HTTP_ADDR/v1/connect/intentions/exact?source=web&destination=echo" >/dev/null
        run "with a deny intention, echo_client gets nothing back" "$WORK/client4.log" \
            bash -c "! '$ASAN/echo_client' web echo '$SERVER_ADDR' <'$WORK/lines' >'$WORK/got4' && ! grep -q echo: '$WORK/got4'"
        sleep 0.5
        run "echo_server reports the refusal with the agent's reason" "$WORK/server-refusal.log" \
            grep -E "refused .*svc/web.*authorization denied.*Action: DENY" "$WORK/server.log"
        run "echo_server printed the peer service of each connection" "$WORK/server-peer.log" \
            grep -c "connection from service web" "$WORK/server.log"

        kill -TERM "$SERVER"
        wait "$SERVER"
        rc=$?
        if [ $rc -eq 0 ] && grep -q "echo stopped" "$WORK/server.log" && ! grep -q "Sanitizer" "$WORK/server.log"; then
            pass "echo_server stops cleanly on SIGTERM (exit 0, no sanitizer report)"
        else
            fail "echo_server stops cleanly on SIGTERM (exit $rc)" "$WORK/server.log"
        fi
        if curl -fsS "http://$CONSUL_HTTP_ADDR/v1/health/connect/echo" | grep -q '^\[\]$'; then
            pass "echo_server deregistered itself"
        else
            fail "echo_server deregistered itself"
        fi
    else
        fail "echo_server listening" "$WORK/server.log"
    fi
else
    fail "dev agent started" "$WORK/agent.log"
fi

echo "c-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
