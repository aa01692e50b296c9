# frozen_string_literal: true

require "json"

module ConsulNative
  # A refused inbound connection, as told to {Listener#on_refused}.
  # @!attribute code [Integer] the `consulnative_result` (e.g. 12, authorization denied)
  # @!attribute peer_address [String] `ip:port`
  # @!attribute peer_uri [String, nil] the client's SPIFFE URI, nil if the handshake failed before it was known
  # @!attribute message [String] the detail (the agent's reason); starts with "N refusals dropped" when this one
  #   stands for N refusals the block did not keep up with (see {#dropped})
  Refusal = Struct.new(:code, :peer_address, :peer_uri, :message) do
    # @return [Class<Error>] the error class for {#code} (e.g. {AuthorizationDenied})
    def error_class
      Error.class_for(code)
    end

    # @return [String] the library's short name for the code
    def code_name
      ConsulNative.result_name(code)
    end

    # @return [Integer] how many refusals this one stands for when the block did not keep up (more than the
    #   `refusal_queue` config key were waiting); 0 for a single refusal
    def dropped
      message.to_s[/\A(\d+) refusals dropped/, 1].to_i
    end

    alias_method :reason, :message
  end

  # A listening Connect endpoint of one service. Created by {Service#listen}.
  class Listener < Handle
    # @api private
    def initialize(pointer)
      super(pointer, :consulnative_listener_free)
    end

    # The bound address with the real port.
    # @return [Array(String, Integer)] e.g. `["127.0.0.1", 41234]` or `["::1", 8443]`
    def address
      ConsulNative.split_address(address_string)
    end

    # @return [String] e.g. `"127.0.0.1:41234"`, `"[::1]:8443"`
    def address_string
      use { |ptr| Native.read_text { |b, l, n| Native.consulnative_listener_address(ptr, b, l, n) } }
    end

    # @return [Integer] the bound port
    def port
      address[1]
    end

    # Waits for the next verified and authorized connection. Refused connections never come out of here (see
    # {#on_refused}). Other Ruby threads keep running while it waits.
    # @param timeout [Numeric, nil] seconds; nil waits forever (in slices, so Thread#raise and exit still work)
    # @yieldparam conn [Conn] with a block, the connection is closed when the block ends
    # @return [Conn] or the block's value
    # @raise [TimeoutError] on timeout; [ClosedError] once the listener is closed
    def accept(timeout: nil, &block)
      out = FFI::MemoryPointer.new(:pointer)
      use do |ptr|
        ConsulNative.sliced(timeout, Native::TIMEOUT) { |ms| Native.consulnative_listener_accept(ptr, ms, out) }
      end
      conn = Conn.new(out.read_pointer)
      block ? ConsulNative.with_block(conn, &block) : conn
    end

    # Accepts connections until the listener is closed, yielding each one (closed after the block) in a new
    # Thread.
    # @yieldparam conn [Conn]
    # @return [nil]
    def each_connection_in_thread
      loop do
        conn = begin
          accept
        rescue ClosedError
          return nil
        end
        Thread.new(conn) { |c| ConsulNative.with_block(c) { yield c } }
      end
    end

    # Calls the block for each refused connection (denied by intentions, no or foreign certificate, handshake
    # failure, rejected by {#peer_check}), in order, on the listener's own refusal thread: a slow or busy block
    # never delays handshakes or authorization. When it falls more than `refusal_queue` (a client config key,
    # default 256) refusals behind, the others are counted and reported in one {Refusal} whose {Refusal#dropped}
    # says how many. Replaces the previous block; nil clears it.
    # @yieldparam refusal [Refusal]
    # @return [nil]
    def on_refused(&block)
      handler = block && self.class.refusal_handler(block)
      @refusal_userdata = set_callback(:consulnative_listener_on_refused, Callbacks::REFUSAL, handler,
                                       @refusal_userdata)
      nil
    end

    # Collects refusals into an Array (thread-safe to read with `dup`), for logging or tests.
    # @return [Array<Refusal>]
    def record_refusals
      list = []
      on_refused { |r| list << r }
      list
    end

    # Sets the application's own check, run after the agent allowed a client on one of the listener's peer check
    # threads (`peer_check_threads` config key, default 2): a truthy result admits it, falsy (or an exception)
    # refuses it with {RejectedByApplication}; no answer within the client's `authorize_timeout_ms` refuses it
    # too. nil block clears it.
    # @yieldparam peer_uri [String]
    # @yieldparam peer_service [String]
    # @return [nil]
    def peer_check(&block)
      @peer_check_userdata = set_callback(:consulnative_listener_set_peer_check, Callbacks::PEER_CHECK, block,
                                          @peer_check_userdata)
      nil
    end

    # Counts of connections admitted and refused so far.
    # @return [Hash{Symbol=>Integer}] `{accepted:, refused:}`
    def counts
      a = FFI::MemoryPointer.new(:uint64)
      r = FFI::MemoryPointer.new(:uint64)
      use { |ptr| Native.check(Native.consulnative_listener_counts(ptr, a, r)) }
      { accepted: a.read(:uint64), refused: r.read(:uint64) }
    end

    # What the listener's bounds did: `accepted`, `refused`, `refusals_dropped` (refusals the block got only as a
    # count), `handshakes_cut` (cut while every handshake slot was taken), `accept_errors` (e.g. no descriptors
    # left), `saturated`, `in_progress`, `waiting` (admitted, not yet accepted), and `limits` (`max_handshakes`,
    # `accept_queue`, `refusal_queue`, `max_authorizations`, `peer_check_threads`, `busy_handshake_timeout_ms`;
    # set them as client config keys).
    # @return [Hash{Symbol=>Integer,Hash}]
    def stats
      json = use { |ptr| Native.read_text { |b, l, n| Native.consulnative_listener_stats(ptr, b, l, n) } }
      JSON.parse(json, symbolize_names: true)
    end

    # @return [String]
    def inspect
      where = closed? ? "closed" : (address_string rescue "?") # rubocop:disable Style/RescueModifier
      "#<#{self.class.name} #{where}>"
    end

    # Built in a class method so the handler does not capture the listener (which must stay collectable).
    # @api private
    def self.refusal_handler(block)
      ->(code, addr, uri, msg) { block.call(Refusal.new(code, addr, uri, msg)) }
    end

    private

    # Sets (handler) or clears (nil) one callback slot; forgets the previous handler. Returns the new userdata.
    def set_callback(function, trampoline, handler, previous)
      userdata = handler && Callbacks.register(owner_key, handler)
      begin
        use { |ptr| Native.check(Native.__send__(function, ptr, handler && trampoline, userdata, nil)) }
      rescue StandardError
        Callbacks.release(owner_key, userdata)
        raise
      end
      Callbacks.on_clear(owner_key, userdata, self.class.clearer(function, raw_pointer)) if userdata
      Callbacks.release(owner_key, previous)
      userdata
    end

    # @api private
    def self.clearer(function, pointer)
      -> { Native.__send__(function, pointer, nil, nil, nil) }
    end

    # Stops accepting and releases the port at once; a blocked accept returns ClosedError.
    def before_free(pointer, _alone)
      Native.consulnative_listener_close(pointer)
    end
  end
end
