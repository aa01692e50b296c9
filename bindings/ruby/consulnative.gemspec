# frozen_string_literal: true

# One version for the crates, the library's soname, the wheel and this gem: `[workspace.package] version` in the
# repository's Cargo.toml. scripts/package.sh builds the gem from a staged copy of this directory and passes that
# number in CONSULNATIVE_VERSION; from bindings/ruby itself it is read from ../../Cargo.toml.
version = ENV.fetch("CONSULNATIVE_VERSION") do
  cargo = File.expand_path("../../Cargo.toml", __dir__)
  File.read(cargo)[/^\[workspace\.package\]\n(?:[^\[\n][^\n]*\n|\n)*?version\s*=\s*"([^"]+)"/, 1] or
    raise "consulnative.gemspec: no [workspace.package] version in #{cargo}"
end

# The native files a platform gem carries beside the Ruby code (scripts/package.sh stages them there).
native = Dir.glob(%w[lib/consulnative/libconsulnative.so lib/consulnative/consulnative-dev-agent], base: __dir__)

Gem::Specification.new do |spec|
  spec.name = "consulnative"
  spec.version = version
  spec.summary = "Consul Connect-native services for Ruby (mutual TLS, SPIFFE identities, intentions)"
  spec.description = <<~TEXT
    Ruby binding for libconsulnative: listen and dial as a Consul Connect-native service. Certificates come from
    the local Consul agent and are kept fresh in the background; every inbound connection is verified and
    authorized by the agent's intentions. Includes DevAgent, which runs the consulnative-dev-agent binary as a
    child process, for tests.
  TEXT
  spec.authors = ["libconsulnative contributors"]
  spec.license = "MPL-2.0"
  spec.homepage = "https://github.com/consulnative/libconsulnative"
  spec.required_ruby_version = ">= 2.7"
  # With the native files staged, a platform gem (x86_64-linux...) that needs nothing but Ruby and the ffi gem.
  # Without them, a plain gem that finds libconsulnative through CONSULNATIVE_LIB, the system's loader
  # (libconsulnative.so.0) or a checkout's target/ (see ConsulNative::Native.load_library).
  unless native.empty?
    missing = %w[libconsulnative.so consulnative-dev-agent] - native.map { |f| File.basename(f) }
    raise "consulnative.gemspec: a platform gem needs both native files; missing #{missing.join(", ")}" \
      unless missing.empty?

    spec.platform = Gem::Platform.local
  end
  # Not the gemspec itself: it reads Cargo.toml, which an installed gem does not have.
  spec.files = Dir.glob(%w[lib/**/*.rb README.md LICENSE CHANGELOG.md], base: __dir__) + native
  spec.require_paths = ["lib"]
  spec.add_dependency "ffi", ">= 1.15"
  spec.add_development_dependency "minitest", ">= 5.0"
  spec.metadata["rubygems_mfa_required"] = "true"
  spec.metadata["changelog_uri"] = "#{spec.homepage}/blob/main/CHANGELOG.md"
end
