#!/usr/bin/env bash
# Section 8 of the benchmark report: the Ruby binding against Ruby's openssl, same certificates
# (benches/lang/ruby_bench.rb). Called by scripts/bench.sh with BENCH_SMOKE and CONSULNATIVE_LIB set.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
[ "${BENCH_SMOKE:-0}" = 1 ] && args+=(--smoke)
printf '### 8. Ruby: `ConsulNative` vs Ruby'"'"'s `openssl`\n\n'
if ! ruby -rffi -ropenssl -e 1 2>/dev/null; then
  echo "(Ruby with the ffi gem is not installed: \`bash scripts/test-ruby.sh\` installs it from Debian's packages.)"
  exit 0
fi
ruby -I"$PWD/bindings/ruby/lib" benches/lang/ruby_bench.rb "${args[@]}"
