# frozen_string_literal: true

module ConsulNative
  # What {Service#write_pem_files} yields after each write: `ok?`, `leaf_serial` (nil on failure), `error` (a
  # {ConsulNative::Error} when the write failed; the previous files then stay in place).
  PemFilesChange = Struct.new(:dir, :leaf_serial, :error, keyword_init: true) do
    # @return [Boolean] true for a successful write
    def ok?
      error.nil?
    end
  end

  # `consulnative_pem_files_callback`; a constant, so never garbage-collected while the library may call it.
  PEM_FILES_CALLBACK = FFI::Function.new(:void, %i[pointer uint32 string]) do |ud, code, detail|
    Callbacks.guard("PEM files") { Callbacks.fetch(ud)&.call(code, detail) }
  end

  # PEM files for programs with their own TLS stack, and the agent's view of an authorization.
  class Service
    # Keeps `dir/cert.pem` (leaf and intermediates), `dir/key.pem` (mode 0600) and `dir/roots.pem` fresh for a
    # program with its own TLS stack. Writes at once when the service is ready, then after every rotation; the
    # three names are symlinks switched together by one rename, so they never resolve to a mismatched pair. The
    # block (optional) gets a {PemFilesChange} after every write, the first included (on a library thread later).
    # @param dir [String]
    # @yieldparam change [PemFilesChange]
    # @return [Integer] an ID: {#remove_callback} stops the rewrites (the files stay)
    # @raise [Error] when the first write fails (e.g. the directory cannot be created)
    def write_pem_files(dir, &block)
      dir = dir.to_s
      handler = self.class.pem_files_handler(dir, block)
      userdata = Callbacks.register(owner_key, handler)
      out = FFI::MemoryPointer.new(:uint64)
      begin
        use do |ptr|
          Native.check(Native.consulnative_service_write_pem_files(ptr, dir, PEM_FILES_CALLBACK, userdata, nil, out))
        end
      rescue StandardError
        Callbacks.release(owner_key, userdata)
        raise
      end
      id = out.read(:uint64)
      Callbacks.on_clear(owner_key, userdata, self.class.remover(raw_pointer, id))
      @callback_ids[id] = userdata
      id
    end

    # Asks the agent whether this service, with its current leaf, may connect to `destination` (what the
    # destination's listener asks for each connection).
    # @param destination [String] a service name
    # @return [String] the agent's reason
    # @raise [AuthorizationDenied] with the agent's reason when denied
    # @raise [NotReady] before the leaf arrives
    def authorize(destination)
      use { |ptr| Native.read_text { |b, l, n| Native.consulnative_service_authorize(ptr, destination, b, l, n) } }
    end

    # @api private
    def self.pem_files_handler(dir, block)
      lambda do |code, detail|
        next unless block

        if code == Native::OK
          block.call(PemFilesChange.new(dir: dir, leaf_serial: detail, error: nil))
        else
          block.call(PemFilesChange.new(dir: dir, leaf_serial: nil, error: Error.for_code(code, detail)))
        end
      end
    end
  end
end
