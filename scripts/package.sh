#!/usr/bin/env bash
# Writes the release packages to dist/ from one release build (`cargo build --release`, the one scripts/demo.sh
# also runs, so a second run of either reuses it):
#
#   dist/consulnative-<v>-py3-none-<platform>.whl       the Python package with libconsulnative.so and
#                                                       consulnative-dev-agent beside its modules
#   dist/consulnative-<v>-<platform>.gem                the Ruby gem with the same two files in lib/consulnative/
#   dist/libconsulnative-<v>-<target>.tar.gz            a prefix for C: include/, lib/ (.so.<v>, .so.<major>, .so,
#                                                       .a, pkgconfig/consulnative.pc), bin/consulnative-dev-agent,
#                                                       share/doc/libconsulnative/ (examples), LICENSE
#   dist/SHA256SUMS
#
# The three carry the same stripped library and dev agent (`make install` strips them once; the wheel and the gem
# take those files). The version is the workspace's (`make print-version` reads Cargo.toml). Needs cargo, python3
# (pip fetches setuptools and setuptools-rust from PyPI for the wheel's build) and Ruby's `gem`, which is
# installed from Debian's packages when missing.
#
#   CONSULNATIVE_NO_BUILD=1   skip cargo (target/release is already built)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
step() { printf '==> %s\n' "$*" >&2; }

VERSION=$(make -s --no-print-directory print-version)
TARGET=$(rustc -vV | sed -n 's/^host: //p')
[ -n "$VERSION" ] && [ -n "$TARGET" ] || { echo "package.sh: no version or no target triple" >&2; exit 1; }
STAGE=$ROOT/target/package
DIST=$ROOT/dist
NAME=libconsulnative-$VERSION-$TARGET
rm -rf "$STAGE" "$DIST"
mkdir -p "$STAGE" "$DIST"

# ---- the C tarball: `make install` (which runs the release build) into a staging prefix ----------------------------
step "cargo build --release, then make install into the tarball's prefix ($NAME)"
nobuild=()
[ -z "${CONSULNATIVE_NO_BUILD:-}" ] || nobuild=(CARGO=true) # `true build ...`: make's build step does nothing
make -s --no-print-directory install PREFIX="$STAGE/$NAME" "${nobuild[@]}" >/dev/null
cp LICENSE README.md CHANGELOG.md "$STAGE/$NAME/"
# Reproducible: sorted, owned by root, dated at the last commit.
mtime=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -cf - "$NAME" |
  gzip -9n >"$DIST/$NAME.tar.gz"

# The stripped files every package carries.
NATIVE=$STAGE/native
mkdir -p "$NATIVE"
cp "$STAGE/$NAME/lib/libconsulnative.so.$VERSION" "$NATIVE/libconsulnative.so"
cp "$STAGE/$NAME/bin/consulnative-dev-agent" "$NATIVE/consulnative-dev-agent"

# ---- the wheel ---------------------------------------------------------------------------------------------------
step "Python wheel"
VENV=target/python-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
rm -rf bindings/python/build bindings/python/*.egg-info
CONSULNATIVE_PREBUILT=$NATIVE "$VENV/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps \
  --wheel-dir "$DIST" ./bindings/python
rm -rf bindings/python/build bindings/python/*.egg-info

# ---- the gem: a staged copy of bindings/ruby with the native files in lib/consulnative/ ---------------------------
step "Ruby gem"
if ! command -v gem >/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq ruby ruby-ffi >/dev/null
fi
GEM=$STAGE/gem
mkdir -p "$GEM"
cp -R bindings/ruby/lib bindings/ruby/README.md bindings/ruby/consulnative.gemspec LICENSE CHANGELOG.md "$GEM/"
cp -p "$NATIVE/libconsulnative.so" "$NATIVE/consulnative-dev-agent" "$GEM/lib/consulnative/"
(cd "$GEM" && CONSULNATIVE_VERSION=$VERSION gem build --silent consulnative.gemspec >/dev/null)
mv "$GEM"/consulnative-"$VERSION"-*.gem "$DIST/"

(cd "$DIST" && sha256sum ./*.whl ./*.gem ./*.tar.gz >SHA256SUMS)
step "wrote $DIST:"
for f in "$DIST"/*.whl "$DIST"/*.gem "$DIST"/*.tar.gz; do
  printf '    %-58s %6.2f MB\n' "$(basename "$f")" "$(stat -c %s "$f" | awk '{print $1 / 1e6}')" >&2
done
