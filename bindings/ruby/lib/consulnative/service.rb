# frozen_string_literal: true

require "json"
require "weakref"

module ConsulNative
  # One service identity: its leaf certificate and the CA roots, kept fresh in the background. Created by
  # {Client#service}. Listeners and connections made from it keep working after it is closed.
  class Service < Handle
    # `consulnative_pem_kind` numbers.
    PEM_KINDS = { leaf_chain: 1, leaf_key: 2, roots: 3 }.freeze
    # `consulnative_event` numbers.
    EVENTS = { 1 => :leaf_rotated, 2 => :roots_changed, 3 => :watch_error }.freeze

    # @return [String] the service name
    attr_reader :name

    # @api private
    def initialize(pointer, name)
      super(pointer, :consulnative_service_free)
      @name = name
      @callback_ids = {} # C callback id => userdata
    end

    # Waits until the service has a leaf and CA roots and the leaf verifies against them.
    # @param timeout [Numeric, nil] seconds; nil waits forever (in slices, so Thread#raise and exit still work)
    # @return [self]
    # @raise [NotReady] on timeout, with the reason and the last agent error
    def wait_ready(timeout: nil)
      use do |ptr|
        ConsulNative.sliced(timeout, Native::NOT_READY) { |ms| Native.consulnative_service_wait_ready(ptr, ms) }
      end
      self
    end

    # @return [Boolean] whether the certificates are usable now
    def ready?
      status[:ready] == true
    end

    # The service's status: `service`, `ready`, `not_ready_reason`, `spiffe_id`, `leaf_serial`,
    # `leaf_valid_before` (Unix seconds), `trust_domain`, `active_root_id`, `roots` (count), `last_error`.
    # @return [Hash{Symbol=>Object}]
    def status
      json = use { |ptr| Native.read_text { |b, l, n| Native.consulnative_service_status(ptr, b, l, n) } }
      JSON.parse(json, symbolize_names: true)
    end

    # @return [String, nil] the current leaf's serial (colon-less hex)
    def serial
      status[:leaf_serial]
    end

    # @return [String, nil] the service's SPIFFE ID
    def spiffe_id
      status[:spiffe_id]
    end

    # The current leaf chain, leaf private key or CA roots as PEM, for running your own TLS stack.
    # @param kind [Symbol] `:leaf_chain`, `:leaf_key` (a secret) or `:roots`
    # @return [String]
    # @raise [NotReady] before they arrive
    def pem(kind)
      number = PEM_KINDS.fetch(kind) { raise ArgumentError, "unknown PEM kind #{kind.inspect} (#{PEM_KINDS.keys.join(", ")})" }
      use { |ptr| Native.read_text { |b, l, n| Native.consulnative_service_pem(ptr, number, b, l, n) } }
    end

    # Calls the block on a library thread for every change: `:leaf_rotated`, `:roots_changed`, `:watch_error`.
    # Keep it short; do not close the service from inside it. The block is held until {#remove_callback} or
    # {#close}/garbage collection of the service; the service is passed in so the block need not capture it (a
    # block that references the service keeps it alive until it is closed).
    # @yieldparam event [Symbol]
    # @yieldparam service [Service, nil] this service (nil once it was garbage-collected)
    # @return [Integer] an ID for {#remove_callback}
    def on_event(&block)
      raise ArgumentError, "a block is required" unless block

      handler = self.class.event_handler(WeakRef.new(self), block)
      userdata = Callbacks.register(owner_key, handler)
      out = FFI::MemoryPointer.new(:uint64)
      begin
        use do |ptr|
          Native.check(Native.consulnative_service_add_callback(ptr, Callbacks::EVENT, userdata, nil, out))
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

    # Calls the block (on a library thread) each time a new leaf certificate is in force (a serial different
    # from the one in force when the block was added).
    # @yieldparam service [Service]
    # @return [Integer] an ID for {#remove_callback}
    def on_rotate(&block)
      raise ArgumentError, "a block is required" unless block

      initial = ready? ? serial : nil
      on_event(&self.class.rotation_filter(block, initial))
    end

    # Removes a callback added with {#on_event} or {#on_rotate}. A call already running may still finish.
    # @return [nil]
    def remove_callback(id)
      use { |ptr| Native.check(Native.consulnative_service_remove_callback(ptr, id)) }
      Callbacks.release(owner_key, @callback_ids.delete(id))
      nil
    end

    # Listens for Connect clients. Every connection is verified and authorized before {Listener#accept}
    # returns it. With a block, yields the listener and closes it when the block ends.
    # @param address [String] `"127.0.0.1:0"`, `"[::1]:8443"`, `"0.0.0.0:8443"`
    # @param alpn [Array<String>, String, nil] protocols to offer
    # @yieldparam listener [Listener]
    # @return [Listener] or the block's value
    def listen(address, alpn: nil)
      alpn = alpn.join(",") if alpn.is_a?(Array)
      listener = use do |ptr|
        Listener.new(Native.out_pointer { |out| Native.consulnative_service_listen(ptr, address, alpn, out) })
      end
      block_given? ? ConsulNative.with_block(listener) { |l| yield l } : listener
    end

    # Dials service `target` through the agent's catalog (healthy instances, random order, next on failure),
    # checking the server presents `target`'s identity. With a block, yields the connection and closes it.
    # @param target [String] a service name
    # @param timeout [Numeric, nil] seconds (nil: none)
    # @param datacenter [String, nil]
    # @param alpn [Array<String>, String, nil]
    # @yieldparam conn [Conn]
    # @return [Conn] or the block's value
    # @raise [NoInstances, IdentityMismatch, CertificateInvalid, HandshakeError, TimeoutError]
    def dial(target, timeout: nil, datacenter: nil, alpn: nil, &block)
      alpn = alpn.join(",") if alpn.is_a?(Array)
      conn = use do |ptr|
        Conn.new(Native.out_pointer do |out|
          Native.consulnative_service_dial(ptr, target, datacenter, alpn, Native.ms(timeout), out)
        end)
      end
      block ? ConsulNative.with_block(conn, &block) : conn
    end

    # Dials `address` directly; the server must present `expected` (a service name, or a full `spiffe://` URI).
    # @param address [String] `host:port`
    # @param expected [String]
    # @return [Conn] or the block's value
    def dial_address(address, expected:, timeout: nil, alpn: nil, &block)
      alpn = alpn.join(",") if alpn.is_a?(Array)
      conn = use do |ptr|
        Conn.new(Native.out_pointer do |out|
          Native.consulnative_service_dial_address(ptr, address, expected, alpn, Native.ms(timeout), out)
        end)
      end
      block ? ConsulNative.with_block(conn, &block) : conn
    end

    # The object the event trampoline calls. Built in a class method so that it does not capture the service
    # itself (only a WeakRef): the callback table must not keep the service from being garbage-collected.
    # @api private
    def self.event_handler(ref, block)
      lambda do |event|
        svc = begin
          ref.__getobj__
        rescue WeakRef::RefError
          nil
        end
        block.call(EVENTS.fetch(event, event), svc)
      end
    end

    # Passes on `:leaf_rotated` only when the serial really changed: the library also reports the first leaf
    # as `:leaf_rotated`, and a callback added just after {#wait_ready} can still receive that first event.
    # @api private
    def self.remover(pointer, id)
      -> { Native.consulnative_service_remove_callback(pointer, id) }
    end

    # @api private
    def self.rotation_filter(block, initial_serial)
      last = [initial_serial]
      proc do |event, svc|
        next unless event == :leaf_rotated && svc

        current = svc.serial
        next if current.nil? || current == last[0]

        last[0] = current
        block.call(svc)
      end
    end

    # @return [String]
    def inspect
      "#<#{self.class.name} #{@name}#{closed? ? " (closed)" : ""}>"
    end
  end
end
