#!/usr/bin/env bash
# Profiles one benchmark kind under callgrind (this machine has no hardware counters: `perf stat -e instructions`
# says "not supported") and prints the instructions per unit and the top inclusive functions.
#
#   bash benches/profile.sh rate-library 250     # 250 sequential connection setups through the C ABI
#   bash benches/profile.sh rate-bare 250        # the same with bare tokio-rustls
#   bash benches/profile.sh bulk-handoff 64      # 64 MiB through the descriptor handoff (bulk-rw, bulk-bare)
#
# Each kind also runs with a fifth of the count, and the difference divided by the extra units is the cost of one
# unit without the setup (dev agent, certificates). Output files stay in target/profile/. The dev agent is a
# process of its own (not traced): the counts are the application's instructions, both connection ends.
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?kind: rate-library rate-bare bulk-rw bulk-handoff bulk-bare}
n=${2:-250}
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
cargo build --release --locked -p consulnative-devagent --bin consulnative-dev-agent 2>&1 | tail -n 1  # the children start it
exe=$(cargo bench --locked --bench bench --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "bench" and m.get("executable"): print(m["executable"])' | tail -n 1)
mkdir -p target/profile
small=$((n / 5))
total() { grep -h 'Collected' "$1" | awk '{gsub(",","",$4); print $4}'; }
for count in "$small" "$n"; do
  valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="target/profile/$kind.$count.out" \
    "$exe" __child profile "$kind" "$count" >/dev/null 2>"target/profile/$kind.$count.log"
done
a=$(total "target/profile/$kind.$small.log"); b=$(total "target/profile/$kind.$n.log")
echo "$kind: $(( (b - a) / (n - small) )) instructions per unit (connection or MiB), from $small and $n units"
callgrind_annotate --inclusive=yes "target/profile/$kind.$n.out" 2>/dev/null | sed -n '/file:function/,$p' | sed -n 1,40p | cut -c1-200
