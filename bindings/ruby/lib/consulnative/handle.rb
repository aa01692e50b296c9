# frozen_string_literal: true

module ConsulNative
  # The base of every object that owns a native handle.
  #
  # The pointer lives in an `FFI::AutoPointer`, so the garbage collector frees it if {#close} is never called.
  # {#close} is explicit, idempotent and thread-safe: the C API forbids a `_free` racing with another call on the
  # same handle, so calls in flight are counted and the handle is freed by whichever of `close` and the last
  # call in flight finishes last. A call started after `close` raises {ClosedError}.
  class Handle
    # @param pointer [FFI::Pointer] a handle just returned by the library
    # @param free_function [Symbol] the `Native` function that frees it
    def initialize(pointer, free_function)
      raise ArgumentError, "NULL handle" if pointer.nil? || pointer.null?

      @owner_key = pointer.address

      @auto = FFI::AutoPointer.new(pointer, Handle.releaser(free_function))
      @lock = Mutex.new
      @in_flight = 0
      @closed = false
    end

    # @return [Boolean] whether {#close} was called
    def closed?
      @closed
    end

    # Frees the native handle (now, or when the calls in flight on other threads return). Idempotent.
    # @return [nil]
    def close
      alone = @lock.synchronize do
        return nil if @closed

        @closed = true
        @in_flight += 1 # close itself counts as a call until the hook has run
        @in_flight == 1
      end
      begin
        before_free(@auto, alone)
      ensure
        last = @lock.synchronize { (@in_flight -= 1).zero? }
        release if last
      end
      nil
    end

    # The raw pointer, for debugging. Do not free it.
    # @return [FFI::Pointer, nil]
    def to_ptr
      @closed ? nil : @auto
    end

    # The AutoPointer's releaser (explicit close or GC): forgets the handle's callbacks, then frees it. Built in
    # a class method so it does not capture the handle.
    # @api private
    def self.releaser(free_function)
      lambda do |pointer|
        Callbacks.forget_owner(pointer.address)
        Native.public_send(free_function, pointer)
      end
    end

    private

    # The handle's address, the key of its callbacks.
    def owner_key
      @owner_key ||= @auto.address
    end

    # A plain pointer to the handle that does not keep the Ruby object alive (for clear-at-exit lambdas).
    def raw_pointer
      FFI::Pointer.new(owner_key)
    end

    # Hook run once by {#close} before the handle is freed, e.g. to wake a blocked accept. `alone` is false when
    # calls are in flight on other threads; the hook must then be safe to run concurrently with them.
    def before_free(_pointer, _alone); end

    # Runs the block with the pointer, counting the call as in flight.
    def use
      @lock.synchronize do
        raise ClosedError.new("#{self.class.name.split("::").last.downcase} is closed", ClosedError::CODE) if @closed

        @in_flight += 1
      end
      begin
        yield @auto
      ensure
        last = @lock.synchronize do
          @in_flight -= 1
          @closed && @in_flight.zero?
        end
        release if last
      end
    end

    def release
      auto = @auto
      return unless auto

      @auto = nil
      auto.free
    end
  end
end
