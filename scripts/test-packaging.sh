#!/usr/bin/env bash
# Checks the packages as a new user meets them, outside the repository and with no CONSULNATIVE_* variable set:
#   (1) scripts/package.sh writes the wheel, the gem and the C tarball (one release build);
#   (2) the wheel is platform-tagged and holds the library and the dev agent; installed into a fresh venv in a
#       temporary directory, a short program runs a dev agent, a listener and a dial with nothing set;
#   (3) `pip install ./bindings/python` builds the same from source (setuptools-rust, cargo's target/ reused);
#   (4) the gem installs into a fresh GEM_HOME that sees Debian's ruby-ffi, and the same program runs in Ruby;
#   (5) the tarball unpacks into an empty prefix; pkg-config compiles and links examples/c/echo_server.c and
#       echo_client.c there, dynamically and statically, and they talk through the bundled dev agent;
#   (6) `make install PREFIX=...` lays out the same tree; one version everywhere; sizes.
# Installs what it needs (pkg-config, unzip, Ruby and ruby-ffi from Debian's packages), removes its temporary
# directory and the processes it started. Last line: `N passed, M failed`; exit status 0 only when none failed.
#
# Time: package.sh's release build (shared with scripts/demo.sh; seconds when it exists), then about a minute.
# (3) builds the C ABI crate again the first time (cargo resolves its dependencies' features for that crate
# alone, not unified with the dev agent's as the workspace build does: about 2 minutes on 2 cores, then cached);
# CONSULNATIVE_PACKAGING_NO_SOURCE=1 skips (3).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
WORK=$(mktemp -d "${TMPDIR:-/tmp}/consulnative-packaging.XXXXXX")
PIDS=()
passed=0
failed=0
started=$(date +%s)

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$WORK" "$ROOT/bindings/python/build" "$ROOT"/bindings/python/*.egg-info
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { passed=$((passed + 1)); echo "ok   - $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL - $1"
  [ $# -gt 1 ] && [ -f "$2" ] && sed 's/^/       | /' "$2" | tail -40
}
# run NAME LOG CMD...: one check, passing when CMD exits 0; its output goes to LOG (shown on failure).
run() {
  local name=$1 log=$2
  shift 2
  if "$@" >"$log" 2>&1; then pass "$name"; else fail "$name (exit $?)" "$log"; fi
}
finish() {
  echo "packaging: $(($(date +%s) - started)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
wait_file() { for _ in $(seq $(($2 * 10))); do [ -s "$1" ] && return 0; sleep 0.1; done; return 1; }
# A clean environment for the user's programs: nothing of ours set, nothing of the checkout on any path.
CLEAN_ENV=(env -u CONSULNATIVE_LIB -u CONSULNATIVE_DEV_AGENT -u PYTHONPATH -u RUBYLIB -u RUBYOPT -u GEM_PATH
           -u GEM_HOME -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u CONSUL_HTTP_ADDR -u CONSUL_HTTP_TOKEN)

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v unzip >/dev/null || need+=(unzip)
command -v gem >/dev/null || need+=(ruby)
ruby -rffi -e 1 >/dev/null 2>&1 || need+=(ruby-ffi)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} from Debian's packages"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# ---- (1) package.sh -----------------------------------------------------------------------------------------------
echo "==> (1) scripts/package.sh"
t0=$(date +%s)
if bash scripts/package.sh >"$WORK/package.log" 2>&1; then
  pass "scripts/package.sh wrote dist/ in $(($(date +%s) - t0)) s"
else
  fail "scripts/package.sh" "$WORK/package.log"
  finish
fi
VERSION=$(make -s --no-print-directory print-version)
MAJOR=${VERSION%%.*}
TARGET=$(rustc -vV | sed -n 's/^host: //p')
WHEEL=$(ls dist/consulnative-"$VERSION"-*.whl 2>/dev/null | head -1)
GEMFILE=$(ls dist/consulnative-"$VERSION"-*.gem 2>/dev/null | head -1)
TARBALL=dist/libconsulnative-$VERSION-$TARGET.tar.gz
for f in "$WHEEL" "$GEMFILE" "$TARBALL"; do
  if [ -n "$f" ] && [ -f "$f" ]; then pass "dist/ has $(basename "$f")"; else fail "dist/ lacks an artifact ($f)"; fi
done
[ -n "$WHEEL" ] && [ -n "$GEMFILE" ] && [ -f "$TARBALL" ] || finish

# The test programs: a dev agent, a listener and a dial, in each language.
cat >"$WORK/roundtrip.py" <<'EOF'
import consulnative
from consulnative import _dev_agent

with consulnative.DevAgent() as agent, agent.client() as client:     # the bundled consulnative-dev-agent
    with client.service("db") as db, client.service("web") as web:
        db.wait_ready(timeout=10)
        web.wait_ready(timeout=10)
        with db.listen("127.0.0.1:0") as listener:
            with web.dial("db", address=listener.address, timeout=5) as out:
                with listener.accept(timeout=5) as conn:
                    out.sendall(b"ping")
                    assert conn.recv(4) == b"ping"
                    conn.sendall(b"pong")
                    assert out.recv(4) == b"pong"
                    print("peer", conn.peer.service)
print("library", consulnative.LIBRARY_PATH)
print("agent", _dev_agent.find_binary())
print("version", consulnative.__version__)
EOF
cat >"$WORK/roundtrip.rb" <<'EOF'
require "consulnative"

ConsulNative::DevAgent.open do |agent|                               # the bundled consulnative-dev-agent
  agent.client do |client|
    client.service("db") do |db|
      client.service("web") do |web|
        db.wait_ready(timeout: 10)
        web.wait_ready(timeout: 10)
        db.listen("127.0.0.1:0") do |listener|
          web.dial_address(listener.address_string, expected: "db", timeout: 5) do |out|
            listener.accept(timeout: 5) do |conn|
              out.write("ping")
              raise "no ping" unless conn.read(4) == "ping"
              conn.write("pong")
              raise "no pong" unless out.read(4) == "pong"
              puts "peer #{conn.peer.service}"
            end
          end
        end
      end
    end
  end
end
puts "library #{ConsulNative.library_path}"
puts "agent #{ConsulNative::DevAgent::ChildProcess.binary_path}"
puts "version #{ConsulNative::VERSION}"
EOF
# check_roundtrip NAME LOG DIR: the program's output shows a round trip, with the library and agent under DIR.
check_roundtrip() {
  local name=$1 log=$2 dir=$3
  if grep -qx "peer web" "$log" && grep -q "^library $dir/" "$log" && grep -q "^agent $dir/" "$log" &&
    grep -qx "version $VERSION" "$log"; then
    pass "$name"
    sed -n 's/^\(library\|agent\) /       \1: /p' "$log"
  else
    fail "$name" "$log"
  fi
}

# ---- (2) the wheel -------------------------------------------------------------------------------------------------
echo "==> (2) the wheel: $(basename "$WHEEL")"
unzip -l "$WHEEL" >"$WORK/wheel.list" 2>&1
grep -E "consulnative/(libconsulnative.so|consulnative-dev-agent|__init__.py)$|LICENSE$" "$WORK/wheel.list" |
  sed 's/^/       /'
run "unzip -l: consulnative/libconsulnative.so beside the modules" "$WORK/wheel-lib.log" \
  grep -q " consulnative/libconsulnative.so$" "$WORK/wheel.list"
run "unzip -l: consulnative/consulnative-dev-agent beside the modules" "$WORK/wheel-agent.log" \
  grep -q " consulnative/consulnative-dev-agent$" "$WORK/wheel.list"
run "unzip -l: LICENSE" "$WORK/wheel-license.log" grep -q "dist-info/licenses/LICENSE$" "$WORK/wheel.list"
tag=$(basename "$WHEEL" .whl | cut -d- -f3-)
if [[ "$tag" =~ ^py3-none-(linux|manylinux)_[a-z0-9_]+$ ]] && [[ "$tag" != *-any ]]; then
  pass "the wheel's tag is platform-specific: $tag"
else
  fail "the wheel's tag is platform-specific: $tag"
fi

python3 -m venv "$WORK/venv" >"$WORK/venv.log" 2>&1
run "pip install the wheel into a fresh venv outside the repository" "$WORK/pip-wheel.log" \
  "${CLEAN_ENV[@]}" "$WORK/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-index "$WHEEL"
SITE=$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
(cd "$WORK" && "${CLEAN_ENV[@]}" timeout 60 "$WORK/venv/bin/python" roundtrip.py) >"$WORK/py-wheel.log" 2>&1
check_roundtrip "Python: dev agent, listener and dial from the installed wheel, no variable set" \
  "$WORK/py-wheel.log" "$SITE/consulnative"

# ---- (3) pip install ./bindings/python: the same from source -------------------------------------------------------
if [ -n "${CONSULNATIVE_PACKAGING_NO_SOURCE:-}" ]; then
  echo "==> (3) skipped (CONSULNATIVE_PACKAGING_NO_SOURCE)"
else
  echo "==> (3) pip install ./bindings/python (setuptools-rust; cargo reuses ${CARGO_TARGET_DIR:-$ROOT/target})"
  python3 -m venv "$WORK/venv-src" >"$WORK/venv-src.log" 2>&1
  t0=$(date +%s)
  run "pip install ./bindings/python builds the library and the dev agent from source" "$WORK/pip-src.log" \
    "${CLEAN_ENV[@]}" CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}" "$WORK/venv-src/bin/python" -m pip \
    install --quiet --disable-pip-version-check "$ROOT/bindings/python"
  echo "       ($(($(date +%s) - t0)) s)"
  SITE_SRC=$("$WORK/venv-src/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  (cd "$WORK" && "${CLEAN_ENV[@]}" timeout 60 "$WORK/venv-src/bin/python" roundtrip.py) >"$WORK/py-src.log" 2>&1
  check_roundtrip "Python: the same program from the source-built install" "$WORK/py-src.log" "$SITE_SRC/consulnative"
fi

# ---- (4) the gem ---------------------------------------------------------------------------------------------------
echo "==> (4) the gem: $(basename "$GEMFILE")"
run "the gem is for this platform, not plain Ruby" "$WORK/gem-platform.log" \
  bash -c "[[ '$(basename "$GEMFILE")' =~ -(x86_64|aarch64)-linux(-gnu)?\.gem$ ]]"
GEMS=$WORK/gem-home
run "gem install --local into a fresh GEM_HOME (ffi from Debian's ruby-ffi)" "$WORK/gem-install.log" \
  "${CLEAN_ENV[@]}" GEM_HOME="$GEMS" gem install --local --no-document "$ROOT/$GEMFILE"
GEMDIR=$(ls -d "$GEMS"/gems/consulnative-"$VERSION"* 2>/dev/null | head -1)
run "the installed gem holds the library, the dev agent and LICENSE" "$WORK/gem-files.log" \
  ls "$GEMDIR/lib/consulnative/libconsulnative.so" "$GEMDIR/lib/consulnative/consulnative-dev-agent" "$GEMDIR/LICENSE"
(cd "$WORK" && "${CLEAN_ENV[@]}" GEM_HOME="$GEMS" timeout 60 ruby -w roundtrip.rb) >"$WORK/rb-gem.log" 2>&1
check_roundtrip "Ruby: dev agent, listener and dial from the installed gem, no variable set" "$WORK/rb-gem.log" \
  "$GEMDIR/lib/consulnative"
run "Ruby: no warnings under -w" "$WORK/rb-gem.log" bash -c "! grep -i 'warning' '$WORK/rb-gem.log'"

# ---- (5) the C tarball ---------------------------------------------------------------------------------------------
echo "==> (5) the C tarball: $(basename "$TARBALL")"
PREFIX=$WORK/prefix
mkdir -p "$PREFIX"
tar -xzf "$TARBALL" -C "$PREFIX" --strip-components=1
LIB=$PREFIX/lib
run "the prefix has the header, the library with its links, the archive, pkg-config, the agent, examples, LICENSE" \
  "$WORK/tree.log" bash -c "set -e; cd '$PREFIX'
    test -f include/consulnative.h; test -f lib/libconsulnative.so.$VERSION; test -f lib/libconsulnative.a
    test \"\$(readlink lib/libconsulnative.so.$MAJOR)\" = libconsulnative.so.$VERSION
    test \"\$(readlink lib/libconsulnative.so)\" = libconsulnative.so.$MAJOR
    test -f lib/pkgconfig/consulnative.pc; test -x bin/consulnative-dev-agent; test -f LICENSE
    test -f share/doc/libconsulnative/LICENSE; ls share/doc/libconsulnative/examples/c/echo_server.c"
export PKG_CONFIG_PATH=$LIB/pkgconfig
run "pkg-config --modversion consulnative is $VERSION" "$WORK/pc-version.log" \
  bash -c "test \"\$(pkg-config --modversion consulnative)\" = '$VERSION'"
CFLAGS_PC=$(pkg-config --cflags consulnative)
LIBS_PC=$(pkg-config --libs consulnative)
LIBS_STATIC=$(pkg-config --static --libs consulnative)
LIBDIR_PC=$(pkg-config --variable=libdir consulnative)
echo "       --cflags: $CFLAGS_PC"
echo "       --libs: $LIBS_PC"
echo "       --static --libs: $LIBS_STATIC"
SRC=$WORK/src
mkdir -p "$SRC"
cp "$PREFIX"/share/doc/libconsulnative/examples/c/echo_{server,client}.c "$SRC/"
for prog in echo_server echo_client; do
  # shellcheck disable=SC2086 # pkg-config's flags are meant to split
  run "$prog: compiles and links with pkg-config (shared)" "$WORK/cc-$prog.log" \
    gcc -std=c11 -D_GNU_SOURCE -Wall -Werror -O1 -o "$SRC/$prog" "$SRC/$prog.c" $CFLAGS_PC $LIBS_PC \
    -Wl,-rpath,"$LIBDIR_PC" -pthread
  # Static: the archive in place of -lconsulnative (the linker prefers the .so), then Libs.private.
  # shellcheck disable=SC2086
  run "$prog: compiles and links with pkg-config --static (libconsulnative.a)" "$WORK/cc-$prog-static.log" \
    gcc -std=c11 -D_GNU_SOURCE -Wall -Werror -O1 -o "$SRC/$prog-static" "$SRC/$prog.c" $CFLAGS_PC \
    ${LIBS_STATIC/-lconsulnative/-l:libconsulnative.a} -pthread
done
run "the shared builds load libconsulnative.so.$MAJOR from the prefix" "$WORK/ldd-shared.log" \
  bash -c "ldd '$SRC/echo_server' '$SRC/echo_client' | grep -c 'libconsulnative.so.$MAJOR => $PREFIX/' | grep -qx 2"
run "the static builds need no libconsulnative at run time" "$WORK/ldd-static.log" \
  bash -c "! ldd '$SRC/echo_server-static' '$SRC/echo_client-static' | grep libconsulnative"

"${CLEAN_ENV[@]}" "$PREFIX/bin/consulnative-dev-agent" --http-addr 127.0.0.1:0 --addr-file "$WORK/agent.addr" \
  >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
if wait_file "$WORK/agent.addr" 20; then
  AGENT_ADDR=$(head -1 "$WORK/agent.addr")
  pass "the bundled dev agent listens on $AGENT_ADDR"
  printf 'hello\nconnect native\n' >"$WORK/lines"
  printf 'echo: hello\necho: connect native\n' >"$WORK/want"
  n=0
  for pair in "echo_server echo_client-static" "echo_server-static echo_client"; do
    read -r server client <<<"$pair"
    n=$((n + 1))
    (cd "$WORK" && "${CLEAN_ENV[@]}" CONSUL_HTTP_ADDR="$AGENT_ADDR" "$SRC/$server" "echo$n" 127.0.0.1:0 \
      "$WORK/server$n.addr") >"$WORK/server$n.log" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    if wait_file "$WORK/server$n.addr" 30; then
      run "$client dials $server (echo$n) through the catalog and gets every line back" "$WORK/client$n.log" \
        bash -c "cd '$WORK' && ${CLEAN_ENV[*]} CONSUL_HTTP_ADDR='$AGENT_ADDR' '$SRC/$client' web echo$n \
          <'$WORK/lines' >'$WORK/got$n' && diff '$WORK/want' '$WORK/got$n'"
    else
      fail "$server listening" "$WORK/server$n.log"
    fi
    kill -TERM "$spid" 2>/dev/null
    wait "$spid" 2>/dev/null
  done
else
  fail "the bundled dev agent started" "$WORK/agent.log"
fi

mv "$PREFIX" "$WORK/moved"
run "the .pc file is relocatable: after moving the prefix, pkg-config points into the new place" "$WORK/pc-moved.log" \
  bash -c "for v in includedir libdir; do d=\$(PKG_CONFIG_PATH='$WORK/moved/lib/pkgconfig' pkg-config --variable=\$v \
    consulnative); echo \$v \$d; test \"\$(realpath \"\$d\")\" = '$WORK/moved/'\${v%dir}; done"

# ---- (6) make install, versions, sizes -----------------------------------------------------------------------------
echo "==> (6) make install, one version, sizes"
run "make install PREFIX=... (no rebuild: the release build is reused)" "$WORK/make-install.log" \
  make -s --no-print-directory install PREFIX="$WORK/installed"
# The tarball is the installed tree plus LICENSE, README.md and CHANGELOG.md at its top.
(cd "$WORK/moved" && find . ! -type d ! -path ./LICENSE ! -path ./README.md ! -path ./CHANGELOG.md | sort) \
  >"$WORK/tar.files"
(cd "$WORK/installed" && find . ! -type d | sort) >"$WORK/install.files"
run "make install lays out the tarball's tree" "$WORK/tree-diff.log" diff "$WORK/tar.files" "$WORK/install.files"
run "make uninstall removes every file" "$WORK/make-uninstall.log" bash -c "make -s --no-print-directory uninstall \
  PREFIX='$WORK/installed' && test -z \"\$(find '$WORK/installed' ! -type d)\""

header=$(sed -n 's/^#define CONSULNATIVE_VERSION_STRING "\(.*\)"/\1/p' include/consulnative.h)
soname=$(readelf -d "$WORK/moved/lib/libconsulnative.so.$VERSION" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
py_abi=$(sed -n 's/^ABI_MAJOR = //p' bindings/python/consulnative/_ffi.py)
rb_abi=$(sed -n 's/^ *ABI_MAJOR = //p' bindings/ruby/lib/consulnative/native.rb)
echo "       workspace $VERSION, header $header, soname $soname, bindings' ABI_MAJOR $py_abi (Python) $rb_abi (Ruby)"
if [ "$header" = "$VERSION" ] && [ "$soname" = "libconsulnative.so.$MAJOR" ] && [ "$py_abi" = "$MAJOR" ] &&
  [ "$rb_abi" = "$MAJOR" ] && [[ "$WHEEL" == *"-$VERSION-"* ]] && [[ "$GEMFILE" == *"-$VERSION-"* ]]; then
  pass "one version: workspace, header, soname major, bindings' ABI major, wheel, gem, tarball"
else
  fail "one version: workspace, header, soname major, bindings' ABI major, wheel, gem, tarball"
fi
unzip -o -q "$WHEEL" consulnative/libconsulnative.so -d "$WORK/wheel-lib"
run "the three packages hold the same library" "$WORK/same-lib.log" \
  bash -c "sha256sum '$WORK/wheel-lib/consulnative/libconsulnative.so' '$GEMDIR/lib/consulnative/libconsulnative.so' \
    '$WORK/moved/lib/libconsulnative.so.$VERSION' | tee /dev/stderr | awk '{print \$1}' | uniq | wc -l | grep -qx 1"
run "the library and the dev agent are stripped (no symbol table, no debug sections)" "$WORK/stripped.log" \
  bash -c "for f in '$WORK/moved/lib/libconsulnative.so.$VERSION' '$WORK/moved/bin/consulnative-dev-agent'; do
    readelf -S \"\$f\" | grep -E '\\.(symtab|debug_(info|line|str|abbrev|ranges|loc))' && exit 1; done; true"

mb() { awk -v b="$1" 'BEGIN { printf "%.2f MB", b / 1e6 }'; }
size() { stat -c %s "$1"; }
echo
echo "| package | file | size |"
echo "|---|---|---|"
echo "| wheel | $(basename "$WHEEL") | $(mb "$(size "$WHEEL")") |"
echo "| gem | $(basename "$GEMFILE") | $(mb "$(size "$GEMFILE")") |"
echo "| C tarball | $(basename "$TARBALL") | $(mb "$(size "$TARBALL")") |"
echo "| (in each) stripped libconsulnative.so | | $(mb "$(size "$WORK/moved/lib/libconsulnative.so.$VERSION")") |"
echo "| (in each) stripped consulnative-dev-agent | | $(mb "$(size "$WORK/moved/bin/consulnative-dev-agent")") |"
echo "| (tarball) libconsulnative.a | | $(mb "$(size "$WORK/moved/lib/libconsulnative.a")") |"
echo
finish
