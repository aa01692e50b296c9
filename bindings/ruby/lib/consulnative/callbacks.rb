# frozen_string_literal: true

module ConsulNative
  # Ruby objects the library calls back into, keyed by a small integer passed to C as `userdata`.
  #
  # The C callbacks themselves are a handful of permanent `FFI::Function` constants (trampolines) owned by this
  # module, so no `FFI::Function` can ever be garbage-collected while the library may still call it, whatever
  # order handles are collected in. The library's drop callback removes the Ruby object from the table. A
  # trampoline whose entry is gone does nothing.
  #
  # Trampolines run on library (non-Ruby) threads; the ffi gem hands them to its Ruby callback thread. They never
  # raise into C: an exception in application code is reported with `warn` (a peer check that raises refuses).
  # @api private
  module Callbacks
    @table = {}
    @next_id = 0
    @id_lock = Mutex.new

    class << self
      # Stores an object; returns the userdata pointer that stands for it.
      # @return [FFI::Pointer]
      def register(object)
        id = @id_lock.synchronize { @next_id += 1 }
        @table[id] = object
        FFI::Pointer.new(id)
      end

      # @return [Object, nil]
      def fetch(userdata)
        @table[userdata.address]
      end

      # Forgets an object (no mutex: this may run inside a finalizer). Idempotent.
      def release(userdata)
        @table.delete(userdata.address)
        nil
      end

      # @return [Integer] how many callback objects the library still holds (for tests)
      def size
        @table.size
      end

      # Runs application code from a trampoline; never lets an exception reach C.
      def guard(what, fallback = nil)
        yield
      rescue Exception => e # rubocop:disable Lint/RescueException
        begin
          warn "consulnative: #{what} callback raised #{e.class}: #{e.message}"
        rescue StandardError
          nil
        end
        fallback
      end
    end

    # `consulnative_drop_callback`: the library no longer needs this userdata.
    DROP = FFI::Function.new(:void, [:pointer]) { |ud| Callbacks.release(ud) }

    # `consulnative_event_callback`.
    EVENT = FFI::Function.new(:void, %i[pointer uint32]) do |ud, event|
      Callbacks.guard("service event") { Callbacks.fetch(ud)&.call(event) }
    end

    # `consulnative_refusal_callback`.
    REFUSAL = FFI::Function.new(:void, %i[pointer uint32 string string string]) do |ud, code, address, uri, message|
      Callbacks.guard("refusal") { Callbacks.fetch(ud)&.call(code, address, uri, message) }
    end

    # `consulnative_peer_check_callback`: 0 admits, anything else refuses (also when the block raises).
    PEER_CHECK = FFI::Function.new(:int32, %i[pointer string string]) do |ud, uri, service|
      Callbacks.guard("peer check", 1) do
        check = Callbacks.fetch(ud)
        check.nil? || check.call(uri, service) ? 0 : 1
      end
    end

    # `consulnative_log_callback` (no userdata lifecycle: the logger is module state).
    LOG = FFI::Function.new(:void, %i[pointer uint32 string]) do |_ud, level, message|
      Callbacks.guard("logger") { ConsulNative.__send__(:deliver_log, level, message) }
    end
  end
end
