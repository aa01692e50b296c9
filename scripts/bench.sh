#!/usr/bin/env bash
# The benchmark runner (benches/bench/): builds in release mode (cargo bench) and measures, against the dev agent
# (the consulnative-dev-agent binary, a child process), connection setup rate, bulk throughput, authorize latency,
# rotation latency, memory per idle connection and 1,000 service handles, each next to a bare tokio-rustls and a
# plain TCP baseline run in the same invocation.
#
#   bash scripts/bench.sh            full run (about 5-10 minutes), writes docs/benchmarks.md
#   bash scripts/bench.sh --smoke    seconds-long run, writes target/bench-smoke.md (checks figures are produced)
#   extra arguments go to the runner: --only 1,2   (sections 1-6)   --out PATH
#
# The Python (7) and Ruby (8) binding figures come from benches/bench-python.sh and benches/bench-ruby.sh when
# they exist: each is run with BENCH_SMOKE (0/1), CONSULNATIVE_LIB (the release shared library) and
# CONSULNATIVE_DEV_AGENT (the dev agent binary) in its environment and prints markdown for the report's
# "7-8. Python and Ruby bindings" section, which this script splices in between the BEGIN/END bindings markers.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
args=()
for a in "$@"; do
  if [ "$a" = "--smoke" ]; then smoke=1; else args+=("$a"); fi
done
out=docs/benchmarks.md
[ "$smoke" = 1 ] && out=target/bench-smoke.md
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--out" ] && out="${args[$((i + 1))]}"
done
runner=()
[ "$smoke" = 1 ] && runner+=(--smoke)

printf '==> building (release) and running the Rust benchmarks -> %s\n' "$out"
# The shared library the bindings load, and the dev agent binary the runner and the bindings start.
cargo build --release --locked -p consulnative-ffi -p consulnative-devagent 2>&1 | tail -n 1
cargo bench --locked --bench bench -- "${runner[@]}" --out "$out" "${args[@]}"

# A binding benchmark that fails does not discard the others' figures: the report says it was not measured and
# why, and this script exits non-zero at the end.
fragment=""
failed=()
for lang in python ruby; do
  script="benches/bench-$lang.sh"
  if [ -f "$script" ]; then
    printf '==> %s binding benchmarks (%s)\n' "$lang" "$script"
    err="target/bench-$lang.err"
    if part=$(BENCH_SMOKE=$smoke CONSULNATIVE_LIB="$PWD/target/release/libconsulnative.so" \
      CONSULNATIVE_DEV_AGENT="$PWD/target/release/consulnative-dev-agent" bash "$script" 2>"$err"); then
      cat "$err" >&2
      fragment+="$part"$'\n\n'
    else
      cat "$err" >&2
      failed+=("$lang")
      why=$(grep -E 'Error|error' "$err" | tail -n 1 | sed "s|$PWD/||g" | cut -c1-300 || true)
      fragment+="$part"$'\n\n'"Not measured in this run: \`$script\` failed: ${why:-see its output}"$'\n\n'
    fi
  fi
done
if [ -n "$fragment" ]; then
  FRAGMENT="$fragment" python3 - "$out" <<'PY'
import os, re, sys
path = sys.argv[1]
text = open(path).read()
block = re.compile(r"(<!-- BEGIN bindings.*?-->\n).*?(<!-- END bindings -->)", re.S)
text = block.sub(lambda m: m.group(1) + os.environ["FRAGMENT"].strip() + "\n" + m.group(2), text)
open(path, "w").write(text)
PY
fi
printf '==> wrote %s\n' "$out"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'binding benchmarks failed: %s (the report says so; their stderr is in target/bench-LANG.err)\n' \
    "${failed[*]}" >&2
  exit 1
fi
