# frozen_string_literal: true

module ConsulNative
  # The version of this gem (the native library reports its own with {ConsulNative.library_version}).
  VERSION = "0.1.0"
end
