#!/usr/bin/env bash
# Checks the documentation against the code: every configuration key the C ABI accepts, every result code and
# every environment variable the library, the bindings and the dev agent read has its row in the docs' tables;
# every Python, Ruby, Rust and C snippet of docs/ runs against a dev agent; no relative link of any Markdown file
# points at nothing. Then it runs the checker's own tests (scripts/test_check_docs.py: an undocumented key, code or
# variable added to a copy of the repository must fail the check).
#
#   bash scripts/check-docs.sh [-v]            # -v also lists the checks that pass
#
# It builds the library and the dev agent binary (cargo build; CONSULNATIVE_NO_BUILD=1 skips that, with
# CONSULNATIVE_LIB pointing at a prebuilt library and the dev agent beside it or in CONSULNATIVE_DEV_AGENT), and
# installs gcc, openssl (for the snippets run against an agent over HTTPS), Ruby and the ffi gem from Debian's
# packages when they are missing. The last line is `N passed, M failed`; the exit status is 1 when anything
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
command -v python3 >/dev/null || need_debs+=(python3)
command -v gcc >/dev/null || need_debs+=(gcc)
command -v openssl >/dev/null || need_debs+=(openssl)
ruby -rffi -e 1 >/dev/null 2>&1 || need_debs+=(ruby ruby-ffi)
if [ ${#need_debs[@]} -gt 0 ]; then
  echo "check-docs: installing ${need_debs[*]} from Debian's packages" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_debs[@]}" >/dev/null
fi

[ -n "${CONSULNATIVE_NO_BUILD:-}" ] || cargo build --quiet --locked
export CONSULNATIVE_LIB="${CONSULNATIVE_LIB:-$PWD/target/debug/libconsulnative.so}"

mkdir -p target
status=0
python3 scripts/check_docs.py "$@" | tee target/check-docs.log || status=1
python3 scripts/test_check_docs.py "$@" 2>&1 | tee target/check-docs-selftest.log || status=1

# One closing line for both: the checks and the checker's own tests. A step that ended without its summary line
# (it crashed) counts as one failure.
summary() { tail -n 1 "$1" | sed -nE 's/^([0-9]+) passed, ([0-9]+) failed.*/\1 \2/p'; }
read -r p1 f1 < <(summary target/check-docs.log) || { p1=0; f1=1; status=1; }
read -r p2 f2 < <(summary target/check-docs-selftest.log) || { p2=0; f2=1; status=1; }
echo "check-docs: docs checks $p1 passed, $f1 failed; the checker's own tests $p2 passed, $f2 failed"
echo "$((p1 + p2)) passed, $((f1 + f2)) failed"
exit "$status"
