# frozen_string_literal: true

require "ffi"

module ConsulNative
  # The raw C API of libconsulnative, one `attach_function` per function in `include/consulnative.h`.
  #
  # Everything that can block, wait on the library's runtime, take a lock a runtime thread may hold, or run a
  # callback (free functions run drop callbacks) is attached with `blocking: true`, so the Ruby VM lock is
  # released and other Ruby threads keep running. Only the three functions that read static or thread-local
  # text are attached without it.
  #
  # The dev agent is not here: {DevAgent} runs the `consulnative-dev-agent` binary (the library has no
  # `consulnative_dev_agent_*` functions any more; attaching a missing function would fail at load).
  #
  # Application code should not need this module: use {Client}, {Service}, {Listener} and {Conn}.
  # @api private
  module Native
    extend FFI::Library

    LIBRARY_NAME = "libconsulnative.so"
    # The C ABI the declarations below are written for: the library's major version, which is its soname's. It
    # changes only on an ABI break, and then this binding changes with it.
    ABI_MAJOR = 0
    SONAME = "#{LIBRARY_NAME}.#{ABI_MAJOR}"
    # The copy a platform gem ships, beside this file.
    PACKAGED = File.join(__dir__, LIBRARY_NAME)

    # The ffi gem dlclose()s its libraries when the VM tears down at exit, while the library's runtime threads
    # are still running: they would then execute unmapped code (a SIGSEGV at exit, seen about once in 60 runs of
    # a process exiting with open handles). A second reference opened with RTLD_NODELETE keeps the library
    # mapped until the process is gone.
    # @api private
    module Pin
      extend FFI::Library
      ffi_lib FFI::Library::LIBC
      attach_function :dlopen, %i[string int], :pointer
      RTLD_NOW = 0x2
      RTLD_NODELETE = 0x1000

      # `Dl_info` of dladdr(3).
      class DlInfo < FFI::Struct
        layout :dli_fname, :pointer, :dli_fbase, :pointer, :dli_sname, :pointer, :dli_saddr, :pointer
      end
      begin
        attach_function :dladdr, %i[pointer pointer], :int
      rescue FFI::NotFoundError
        nil # a libc without dladdr: file_of answers nil
      end

      # The file `library` (an FFI::DynamicLibrary) was loaded from, found through one of its symbols; nil if
      # dladdr cannot say.
      # @return [String, nil]
      def self.file_of(library, symbol)
        return nil unless respond_to?(:dladdr)

        address = library.find_function(symbol) or return nil
        info = DlInfo.new
        return nil if dladdr(address, info).zero? || info[:dli_fname].null?

        info[:dli_fname].read_string
      end
    end

    # A source checkout's build output, debug first: `target/` of the repository holding bindings/ruby.
    # @return [Array<String>]
    def self.checkout_paths
      repo = File.expand_path("../../../..", __dir__) # bindings/ruby/lib/consulnative -> the repository
      [File.join(repo, "target", "debug", LIBRARY_NAME), File.join(repo, "target", "release", LIBRARY_NAME)]
    end

    # Loads the library, first match wins: `CONSULNATIVE_LIB` (a path); the copy inside the gem; the system's
    # loader by soname (`libconsulnative.so.0`: LD_LIBRARY_PATH, the ldconfig cache, the default directories, where
    # the C tarball or `make install` put it); a source checkout's `target/debug` then `target/release`. A library
    # of another ABI major is refused.
    # @raise [LoadError] listing everything tried and how to fix it
    # @return [void]
    def self.load_library
      env = ENV["CONSULNATIVE_LIB"]
      if env && !env.empty?
        unless File.file?(env)
          raise LoadError, "CONSULNATIVE_LIB=#{env} does not name a file: point it at a #{LIBRARY_NAME}, or unset it"
        end

        return open_library(env, "CONSULNATIVE_LIB")
      end
      tried = ["CONSULNATIVE_LIB (not set)"]
      return open_library(PACKAGED, "the copy inside the gem") if File.file?(PACKAGED)

      tried << "#{PACKAGED} (the copy a platform gem ships): no such file"
      begin
        ffi_lib SONAME
      rescue LoadError => e
        tried << "the system loader, #{SONAME}: #{e.message.lines.first.to_s.strip}"
      else
        return check_abi("the system loader")
      end
      found = checkout_paths.find { |p| File.file?(p) }
      return open_library(found, "a source checkout's build output") if found

      tried << "#{checkout_paths.join(" and ")} (a source checkout's build output): no such files"
      raise LoadError, "cannot find #{LIBRARY_NAME}. Tried, in order: #{tried.join("; ")}. Fix: install the " \
                       "consulnative platform gem (scripts/package.sh writes it to dist/: it ships the library), " \
                       "or install the C library so the loader finds #{SONAME} (the tarball or `make install`, " \
                       "then ldconfig or LD_LIBRARY_PATH), or run `cargo build` in the source checkout, or set " \
                       "CONSULNATIVE_LIB to the path of #{LIBRARY_NAME}."
    end

    # @return [String] the path of the loaded library (the file the system loader chose, for a soname)
    def self.library_path
      @library_path
    end

    def self.open_library(path, why)
      ffi_lib path
      check_abi(why)
    end

    # Records where the library just loaded lives and refuses it unless its major version is {ABI_MAJOR}.
    def self.check_abi(why)
      library = ffi_libraries.first
      @library_path = Pin.file_of(library, "consulnative_version") || library.name
      version = FFI::Function.new(:pointer, [], library.find_function("consulnative_version")).call.read_string
      return if version.split(".").first == ABI_MAJOR.to_s

      raise LoadError, "#{@library_path} (#{why}) is libconsulnative #{version}, but this binding is written for " \
                       "the ABI of major version #{ABI_MAJOR} (#{SONAME}): install matching versions, or set " \
                       "CONSULNATIVE_LIB to a library of that ABI"
    end
    private_class_method :open_library, :check_abi

    load_library
    PINNED = Pin.dlopen(library_path, Pin::RTLD_NOW | Pin::RTLD_NODELETE)

    # Result codes (`enum consulnative_result`).
    OK = 0
    BUFFER_TOO_SMALL = 17
    TIMEOUT = 8
    NOT_READY = 7

    callback :log_callback, %i[pointer uint32 string], :void
    callback :refusal_callback, %i[pointer uint32 string string string], :void
    callback :drop_callback, [:pointer], :void
    callback :peer_check_callback, %i[pointer string string], :int32
    callback :event_callback, %i[pointer uint32], :void
    callback :pem_files_callback, %i[pointer uint32 string], :void

    B = { blocking: true }.freeze

    # Library-wide: static text and the calling thread's last error never block.
    attach_function :consulnative_version, [], :pointer
    attach_function :consulnative_result_name, [:uint32], :pointer
    attach_function :consulnative_last_error, %i[pointer size_t pointer], :uint32
    attach_function :consulnative_set_logger, %i[log_callback pointer uint32], :uint32, B

    # Configuration.
    attach_function :consulnative_config_new, [:pointer], :uint32, B
    attach_function :consulnative_config_set, %i[pointer string string], :uint32, B
    attach_function :consulnative_config_free, [:pointer], :void, B

    # Client.
    attach_function :consulnative_client_new, %i[pointer pointer], :uint32, B
    attach_function :consulnative_client_free, [:pointer], :void, B
    attach_function :consulnative_client_register, %i[pointer string string string uint16 string string], :uint32, B
    attach_function :consulnative_client_deregister, %i[pointer string], :uint32, B
    attach_function :consulnative_client_pass_ttl, %i[pointer string string], :uint32, B

    # Service.
    attach_function :consulnative_service_new, %i[pointer string pointer], :uint32, B
    attach_function :consulnative_service_free, [:pointer], :void, B
    attach_function :consulnative_service_wait_ready, %i[pointer int64], :uint32, B
    attach_function :consulnative_service_status, %i[pointer pointer size_t pointer], :uint32, B
    attach_function :consulnative_service_pem, %i[pointer uint32 pointer size_t pointer], :uint32, B
    attach_function :consulnative_service_add_callback, %i[pointer event_callback pointer drop_callback pointer],
                    :uint32, B
    attach_function :consulnative_service_remove_callback, %i[pointer uint64], :uint32, B
    attach_function :consulnative_service_write_pem_files,
                    %i[pointer string pem_files_callback pointer drop_callback pointer], :uint32, B
    attach_function :consulnative_service_authorize, %i[pointer string pointer size_t pointer], :uint32, B
    attach_function :consulnative_service_listen, %i[pointer string string pointer], :uint32, B
    attach_function :consulnative_service_dial, %i[pointer string string string int64 pointer], :uint32, B
    attach_function :consulnative_service_dial_address, %i[pointer string string string int64 pointer], :uint32, B

    # Listener.
    attach_function :consulnative_listener_address, %i[pointer pointer size_t pointer], :uint32, B
    attach_function :consulnative_listener_accept, %i[pointer int64 pointer], :uint32, B
    attach_function :consulnative_listener_on_refused, %i[pointer refusal_callback pointer drop_callback], :uint32, B
    attach_function :consulnative_listener_set_peer_check, %i[pointer peer_check_callback pointer drop_callback],
                    :uint32, B
    attach_function :consulnative_listener_counts, %i[pointer pointer pointer], :uint32, B
    attach_function :consulnative_listener_stats, %i[pointer pointer size_t pointer], :uint32, B
    attach_function :consulnative_listener_close, [:pointer], :void, B
    attach_function :consulnative_listener_free, [:pointer], :void, B

    # Connection.
    attach_function :consulnative_conn_read, %i[pointer pointer size_t int64 pointer], :uint32, B
    attach_function :consulnative_conn_write, %i[pointer pointer size_t int64 pointer], :uint32, B
    attach_function :consulnative_conn_shutdown, %i[pointer int64], :uint32, B
    attach_function :consulnative_conn_close, %i[pointer int64], :uint32, B
    attach_function :consulnative_conn_info, %i[pointer pointer size_t pointer], :uint32, B
    attach_function :consulnative_conn_handoff, %i[pointer pointer], :uint32, B
    attach_function :consulnative_conn_free, [:pointer], :void, B

    # The last error message recorded on this thread (empty if none).
    # @return [String]
    def self.last_error
      n = FFI::MemoryPointer.new(:size_t)
      buf = FFI::MemoryPointer.new(:char, 512)
      loop do
        rc = consulnative_last_error(buf, buf.size, n)
        return utf8(buf.read_bytes(n.read(:size_t))) if rc == OK
        return "" unless rc == BUFFER_TOO_SMALL

        buf = FFI::MemoryPointer.new(:char, n.read(:size_t) + 1)
      end
    end

    # Raises the {Error} subclass for `rc` (with the thread's last error message) unless it is OK.
    # Must be called right after the failing call, on the same thread.
    # @return [void]
    def self.check(rc, context = nil)
      return if rc == OK

      message = last_error
      message = "#{context}: #{message}" if context
      raise Error.for_code(rc, message)
    end

    # Calls a (buf, len, out_n) function until the buffer is large enough (the text can grow between calls).
    # @yieldparam buf [FFI::Pointer] @yieldparam len [Integer] @yieldparam out_n [FFI::Pointer]
    # @yieldreturn [Integer] a result code
    # @return [String] UTF-8 text
    def self.read_text
      n = FFI::MemoryPointer.new(:size_t)
      buf = FFI::MemoryPointer.new(:char, 1024)
      loop do
        rc = yield(buf, buf.size, n)
        return utf8(buf.read_bytes(n.read(:size_t))) if rc == OK

        check(rc) unless rc == BUFFER_TOO_SMALL
        buf = FFI::MemoryPointer.new(:char, n.read(:size_t) + 1)
      end
    end

    # Reads a pointer out-parameter after a successful constructor call.
    # @return [FFI::Pointer]
    def self.out_pointer
      out = FFI::MemoryPointer.new(:pointer)
      check(yield(out))
      out.read_pointer
    end

    def self.utf8(bytes)
      bytes.force_encoding(Encoding::UTF_8)
    end

    # Milliseconds for the C API from a public timeout in seconds (nil: no timeout, -1; 0: do not wait).
    # @return [Integer]
    # @raise [ArgumentError] for a negative timeout (see {ConsulNative.check_timeout})
    def self.ms(seconds)
      seconds = ConsulNative.check_timeout(seconds)
      return -1 if seconds.nil?

      (seconds * 1000).ceil
    end
  end
end
