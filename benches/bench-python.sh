#!/usr/bin/env bash
# Section 7 of the benchmark report: the Python binding against Python's own ssl module, same certificates
# (benches/lang/python_bench.py). Called by scripts/bench.sh with BENCH_SMOKE and CONSULNATIVE_LIB set.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
[ "${BENCH_SMOKE:-0}" = 1 ] && args+=(--smoke)
printf '### 7. Python: `consulnative` vs Python'"'"'s `ssl`\n\n'
PYTHONPATH="$PWD/bindings/python" python3 benches/lang/python_bench.py "${args[@]}"
