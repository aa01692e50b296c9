# frozen_string_literal: true

module ConsulNative
  # Ruby objects the library calls back into, keyed by a small integer passed to C as `userdata`.
  #
  # The C callbacks themselves are a handful of permanent `FFI::Function` constants (trampolines) owned by this
  # module, so no `FFI::Function` is garbage-collected while the library may call it, whatever order handles
  # are collected in. A trampoline whose entry is gone does nothing.
  #
  # Lifetimes are kept on the Ruby side, and the library is given a NULL drop callback: its drop callbacks may
  # run late, on a library thread, after the handle was freed, and at process exit that can be after the VM has
  # freed the trampolines (a jump into unmapped memory). Instead an entry is forgotten when its callback is
  # replaced or removed and when its owner handle is freed (explicitly or by the GC); and when the VM tears down,
  # a finalizer registered first (so it runs before the handles' own) clears every callback still set, at the C
  # level, before any trampoline can be freed.
  #
  # Trampolines run on library (non-Ruby) threads; the ffi gem hands them to its Ruby callback thread. They never
  # raise into C: an exception in application code is reported with `warn` (a peer check that raises refuses).
  # @api private
  module Callbacks
    @table = {}   # id => callable
    @owners = {}  # owner handle address => { id => lambda that clears the callback at the C level }
    @next_id = 0
    @id_lock = Mutex.new
    @exiting = false

    class << self
      # @return [Boolean] whether the VM is tearding down (trampolines then do nothing)
      attr_reader :exiting

      # Stores an object for the handle at `owner` (an address); returns the userdata pointer for it.
      # @return [FFI::Pointer]
      def register(owner, object)
        arm_at_exit
        id = @id_lock.synchronize { @next_id += 1 }
        @table[id] = object
        (@owners[owner] ||= {})[id] = nil
        FFI::Pointer.new(id)
      end

      # Sets how to clear the callback `userdata` at the C level (called at exit).
      def on_clear(owner, userdata, clear)
        entries = @owners[owner]
        entries[userdata.address] = clear if entries&.key?(userdata.address)
      end

      # @return [Object, nil]
      def fetch(userdata)
        @table[userdata.address]
      end

      # Forgets one callback (replaced or removed). Idempotent; no mutex: may run inside a finalizer.
      def release(owner, userdata)
        return unless userdata

        @table.delete(userdata.address)
        @owners[owner]&.delete(userdata.address)
        nil
      end

      # Forgets every callback of a handle that is being freed.
      def forget_owner(owner)
        (@owners.delete(owner) || {}).each_key { |id| @table.delete(id) }
        nil
      end

      # @return [Integer] how many callback objects are held (for tests)
      def size
        @table.size
      end

      # Makes sure {.quiesce} runs at exit while Ruby's threads (and so the ffi callback thread) are alive.
      # Registered lazily, on the first callback or logger: under minitest/autorun, whose tests run inside an
      # at_exit handler, it then runs after the tests.
      def arm_at_exit
        return if @armed

        @armed = true
        at_exit { quiesce(logger: true) }
      end

      # Clears every callback still set at the C level, so none can reach Ruby any more. At exit (logger: true)
      # also restores the default logger. Not at VM teardown (from the finalizer): the library calls the log
      # callback while holding the lock consulnative_set_logger needs, and a log call stuck waiting for the
      # (then dead) Ruby callback thread would hang set_logger forever.
      def quiesce(*_finalizer_args, logger: false)
        @exiting = true
        ConsulNative.__send__(:reset_logger_at_exit) if logger
        @owners.each_value do |entries|
          entries.each_value { |clear| clear&.call rescue nil } # rubocop:disable Style/RescueModifier
        end
        @owners.clear
        @table.clear
      end

      # Runs application code from a trampoline; never lets an exception reach C.
      def guard(what, fallback = nil)
        return fallback if @exiting

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

    # Registered before any handle exists, so at teardown it runs before every handle's finalizer.
    SENTINEL = Object.new
    ObjectSpace.define_finalizer(SENTINEL, method(:quiesce))

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
