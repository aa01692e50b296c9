# frozen_string_literal: true

require_relative "lib/consulnative/version"

Gem::Specification.new do |spec|
  spec.name = "consulnative"
  spec.version = ConsulNative::VERSION
  spec.summary = "Consul Connect-native services for Ruby (mutual TLS, SPIFFE identities, intentions)"
  spec.description = <<~TEXT
    Ruby binding for libconsulnative: listen and dial as a Consul Connect-native service. Certificates come from
    the local Consul agent and are kept fresh in the background; every inbound connection is verified and
    authorized by the agent's intentions. Includes DevAgent, which runs the consulnative-dev-agent binary as a
    child process, for tests.
  TEXT
  spec.authors = ["libconsulnative contributors"]
  spec.license = "MPL-2.0"
  spec.required_ruby_version = ">= 2.7"
  # The gem ships the Ruby code; libconsulnative.so is found through CONSULNATIVE_LIB, beside the gem (lib/ or
  # the gem root), or a repository checkout's target/debug and target/release.
  spec.files = Dir["lib/**/*.rb", "lib/*.so", "*.so", "README.md", "consulnative.gemspec"]
  spec.require_paths = ["lib"]
  spec.add_dependency "ffi", ">= 1.15"
  spec.add_development_dependency "minitest", ">= 5.0"
  spec.metadata["rubygems_mfa_required"] = "true"
end
