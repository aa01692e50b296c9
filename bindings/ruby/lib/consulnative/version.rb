# frozen_string_literal: true

module ConsulNative
  # This gem's version, which is the version of the libconsulnative it loads: one number for both, the workspace
  # version in the repository's Cargo.toml (also the wheel's, and the soname's major). The gemspec reads it from
  # Cargo.toml; here it comes from the library ({ConsulNative.library_version}), so it cannot drift.
  VERSION = library_version.dup.freeze
end
