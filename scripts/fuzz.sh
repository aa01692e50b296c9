#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, AddressSanitizer) of every parser that reads untrusted bytes:
# agent answers, SPIFFE URIs, PEM/DER, configuration strings, the dev agent's request decoding. See
# docs/fuzzing.md. Installs the nightly toolchain and cargo-fuzz when missing.
#
#   bash scripts/fuzz.sh                     # CI: every target for FUZZ_SECONDS (default 14) each, then stop
#   FUZZ_SECONDS=1800 bash scripts/fuzz.sh pem spiffe   # a longer run of some targets
#
# Each target starts from the committed seeds (fuzz/seeds/<target>) and keeps what it learns in fuzz/corpus/<target>
# (not committed). A crash stops the script with the input in fuzz/artifacts/<target>/ and the command to replay it.
# FUZZ_SANITIZER=none builds without AddressSanitizer (about twice the executions per second).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-14}
sanitizer=${FUZZ_SANITIZER:-address}
step() { printf '\n==> %s\n' "$*"; }

if ! rustup toolchain list | grep -q '^nightly'; then
  step "installing the nightly toolchain (libFuzzer's instrumentation needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz from crates.io"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

step "building ${#targets[@]} fuzz targets (release, sanitizer: $sanitizer)"
cargo +nightly fuzz build --sanitizer "$sanitizer" 2>&1 | tail -n 2

for target in "${targets[@]}"; do
  step "fuzzing $target for ${seconds}s"
  mkdir -p "fuzz/corpus/$target"
  log="fuzz/target/fuzz-$target.log"
  if ! cargo +nightly fuzz run --sanitizer "$sanitizer" "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
      -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      >"$log" 2>&1; then
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact' "$log" | head -n 20 >&2 || true
    tail -n 30 "$log" >&2
    echo "FAIL: $target crashed; replay with: cargo +nightly fuzz run $target fuzz/artifacts/$target/<file>" >&2
    exit 1
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || echo 'cov: ?')
  echo "ok: $target: $runs executions, $cov, corpus $(ls "fuzz/corpus/$target" | wc -l) inputs"
done
step "no crash in ${#targets[@]} targets"
