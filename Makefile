# Builds libconsulnative from source and installs it for C users (the Python wheel and the Ruby gem come from
# scripts/package.sh, which also uses this install to lay out the C tarball).
#
#   make                                   cargo build --release: the library (.so, .a) and the dev agent binary
#   make install PREFIX=/usr/local         then `sudo ldconfig` for a system prefix; DESTDIR= for staged installs
#   make uninstall PREFIX=/usr/local
#   make print-version                     the workspace version, the one number of the crates, soname, wheel, gem
#
# What `make install` writes (the library and the binary stripped; STRIP=true keeps their symbols):
#   PREFIX/include/consulnative.h
#   PREFIX/lib/libconsulnative.so.X.Y.Z, libconsulnative.so.X -> it (the soname), libconsulnative.so -> .so.X
#   PREFIX/lib/libconsulnative.a           debug info and LLVM bitcode (.llvmbc, only for cross-language LTO) removed
#   PREFIX/lib/pkgconfig/consulnative.pc   relocatable (${pcfiledir}); static link flags in Libs.private
#   PREFIX/bin/consulnative-dev-agent      the Consul-compatible dev agent for tests and demos
#   PREFIX/share/doc/libconsulnative/      README.md, CHANGELOG.md, LICENSE, examples/
#
# Plain make and cargo rather than cargo-c: the soname already comes from build.rs, the release build is the one
# scripts/demo.sh and scripts/package.sh share (cargo-c would compile the library again with its own flags), and
# cargo-c is not on a fresh machine (installing it compiles it).

PREFIX     ?= /usr/local
DESTDIR    ?=
CARGO      ?= cargo
STRIP      ?= strip
INSTALL    ?= install
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
RELEASE    := $(TARGET_DIR)/release

# [workspace.package] version in Cargo.toml: the only place the version is written.
VERSION := $(shell sed -n '/^\[workspace\.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
# What the static archive needs from the system: rustc's native-static-libs for x86_64/aarch64 Linux (glibc), as
# `cargo rustc -p consulnative-ffi --release --crate-type staticlib -- --print native-static-libs` prints them.
LIBS_PRIVATE ?= -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc

DEST     := $(DESTDIR)$(PREFIX)
LIBDIR   := $(DEST)/lib
DOCDIR   := $(DEST)/share/doc/libconsulnative
REALNAME := libconsulnative.so.$(VERSION)
SONAME   := libconsulnative.so.$(MAJOR)

C_EXAMPLES := examples/c/demo.c examples/c/echo_server.c examples/c/echo_client.c examples/c/dev_agent.c \
              examples/c/dev_agent.h

.PHONY: all build install uninstall print-version

all: build

# Quiet on success (cargo's own progress lines); CARGO=true skips it when target/release is already built.
build:
	$(CARGO) build --release --locked --quiet

print-version:
	@echo $(VERSION)

install: build
	@test -n "$(VERSION)" || { echo "no [workspace.package] version in Cargo.toml" >&2; exit 1; }
	$(INSTALL) -d $(DEST)/include $(LIBDIR)/pkgconfig $(DEST)/bin $(DOCDIR)/examples/c $(DOCDIR)/examples/python \
		$(DOCDIR)/examples/ruby
	$(INSTALL) -m 644 include/consulnative.h $(DEST)/include/consulnative.h
	$(INSTALL) -m 755 $(RELEASE)/libconsulnative.so $(LIBDIR)/$(REALNAME)
	$(STRIP) --strip-unneeded $(LIBDIR)/$(REALNAME)
	ln -sfn $(REALNAME) $(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(LIBDIR)/libconsulnative.so
	$(INSTALL) -m 644 $(RELEASE)/libconsulnative.a $(LIBDIR)/libconsulnative.a
	$(STRIP) --strip-debug --remove-section=.llvmbc --remove-section=.llvmcmd $(LIBDIR)/libconsulnative.a
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(LIBS_PRIVATE)|' packaging/consulnative.pc.in \
		> $(LIBDIR)/pkgconfig/consulnative.pc
	$(INSTALL) -m 755 $(RELEASE)/consulnative-dev-agent $(DEST)/bin/consulnative-dev-agent
	$(STRIP) --strip-unneeded $(DEST)/bin/consulnative-dev-agent
	$(INSTALL) -m 644 README.md CHANGELOG.md LICENSE $(DOCDIR)/
	$(INSTALL) -m 644 $(C_EXAMPLES) $(DOCDIR)/examples/c/
	$(INSTALL) -m 644 examples/python/*.py examples/python/README.md $(DOCDIR)/examples/python/
	$(INSTALL) -m 644 examples/ruby/*.rb $(DOCDIR)/examples/ruby/

uninstall:
	rm -f $(DEST)/include/consulnative.h $(LIBDIR)/$(REALNAME) $(LIBDIR)/$(SONAME) $(LIBDIR)/libconsulnative.so \
		$(LIBDIR)/libconsulnative.a $(LIBDIR)/pkgconfig/consulnative.pc $(DEST)/bin/consulnative-dev-agent
	rm -rf $(DOCDIR)
