# frozen_string_literal: true

require "socket"

module ConsulNative
  # The verified identity of the other side of a {Conn}.
  # @!attribute uri [String] its SPIFFE URI
  # @!attribute service [String]
  # @!attribute namespace [String]
  # @!attribute partition [String]
  # @!attribute datacenter [String]
  # @!attribute trust_domain [String]
  # @!attribute serial [String] its certificate's serial
  Peer = Struct.new(:uri, :service, :namespace, :partition, :datacenter, :trust_domain, :serial, keyword_init: true)

  # An established mutual-TLS connection with a verified (and, inbound, authorized) peer. It reads and writes
  # like a socket (`read`, `readpartial`, `write`, `<<`, `close_write`, `close`); one thread may read while
  # another writes. {#to_io} turns it into a real `Socket` for `IO.select` and plain Ruby socket code.
  class Conn < Handle
    READ_CHUNK = 64 * 1024
    # Seconds {#close} waits at most for the socket to take the TLS close_notify (it only waits when the peer
    # stopped reading and the buffers are full); the connection is closed when it returns either way.
    CLOSE_TIMEOUT = 1.0

    # @api private
    def initialize(pointer)
      super(pointer, :consulnative_conn_free)
      @io = nil
      @info = nil
    end

    # The connection's details: `peer` {uri, service, namespace, partition, datacenter, trust_domain, serial},
    # `local_address`, `peer_address`, `alpn` (nil if none). Still answers after {#to_io}.
    # @return [Hash{Symbol=>Object}]
    def info
      @info ||= JSON.parse(use { |ptr| Native.read_text { |b, l, n| Native.consulnative_conn_info(ptr, b, l, n) } },
                           symbolize_names: true).freeze
    end

    # @return [Peer] the verified peer
    def peer
      Peer.new(**info[:peer])
    end

    # @return [Array(String, Integer)] our address
    def local_address
      ConsulNative.split_address(info[:local_address])
    end

    # @return [Array(String, Integer)] the peer's address
    def peer_address
      ConsulNative.split_address(info[:peer_address])
    end

    # @return [String, nil] the negotiated ALPN protocol
    def alpn
      info[:alpn]
    end

    # Reads up to `maxlen` bytes, waiting for at least one.
    # @param maxlen [Integer]
    # @param timeout [Numeric, nil] seconds (nil: none)
    # @return [String] binary data
    # @raise [EOFError] when the peer closed its side; [TimeoutError] when nothing came in time
    def readpartial(maxlen, outbuf = nil, timeout: nil)
      data = read_some(maxlen, ConsulNative.check_timeout(timeout))
      raise EOFError, "end of stream from #{info[:peer_address]}" if data.nil?

      outbuf ? outbuf.replace(data) : data
    end

    # Reads like `IO#read`: with a length, until that many bytes or end of stream (nil if at end of stream at
    # once); without, everything until end of stream.
    # @param length [Integer, nil]
    # @param timeout [Numeric, nil] seconds for the whole read (nil: none)
    # @return [String, nil] binary data
    # @raise [TimeoutError]
    def read(length = nil, timeout: nil)
      timeout = ConsulNative.check_timeout(timeout)
      deadline = timeout && (ConsulNative.now + timeout)
      out = String.new(encoding: Encoding::BINARY)
      while length.nil? || out.bytesize < length
        left = deadline && [deadline - ConsulNative.now, 0].max
        chunk = read_some(length ? [length - out.bytesize, READ_CHUNK].min : READ_CHUNK, left)
        break if chunk.nil?

        out << chunk
      end
      length && length.positive? && out.empty? ? nil : out
    end

    # Writes all of `data` and flushes it.
    # @param data [String]
    # @param timeout [Numeric, nil] seconds (nil: none)
    # @return [Integer] bytes written
    # @raise [TimeoutError, IoError, ClosedError]
    def write(data, timeout: nil)
      timeout = ConsulNative.check_timeout(timeout)
      data = data.to_s.b
      return 0 if data.empty?

      buf = FFI::MemoryPointer.new(:uint8, data.bytesize)
      buf.put_bytes(0, data)
      n = FFI::MemoryPointer.new(:size_t)
      done = 0
      use do |ptr|
        # Sliced so Thread#raise and exit work; *out_n says how much each slice took, so it resumes exactly.
        ConsulNative.sliced(timeout, Native::TIMEOUT) do |ms|
          rc = Native.consulnative_conn_write(ptr, buf + done, data.bytesize - done, ms, n)
          done += n.read(:size_t)
          rc
        end
      end
      done
    end

    # Writes `data`; returns self for chaining.
    # @return [self]
    def <<(data)
      write(data)
      self
    end

    # Ends our sending side (TLS close_notify, TCP half-close); the peer reads end of stream. Reading stays
    # possible.
    # @param timeout [Numeric, nil] seconds to wait for the socket to take close_notify (nil: none; 0: only what
    #   it takes at once)
    # @return [nil]
    def close_write(timeout: 5)
      use { |ptr| Native.check(Native.consulnative_conn_shutdown(ptr, Native.ms(timeout))) }
      nil
    end
    alias shutdown close_write

    # Hands the connection over as a real socket carrying the plaintext (the library keeps the TLS on its
    # runtime; EOF and half-close pass through both ways). The `Socket` is yours: it works with `IO.select`,
    # `gets`, `puts`, `read_nonblock` and any plain socket code, and closing it ends the connection. Afterwards
    # this object only answers {#info}/{#peer}; `read`/`write` raise {ClosedError}. Called again, returns the same
    # socket. Since `IO.select` calls `to_io`, a Conn can be passed to it directly.
    # @return [Socket]
    def to_io
      return @io if @io

      info # cached: still answered after the handoff
      fd = FFI::MemoryPointer.new(:int32)
      use { |ptr| Native.check(Native.consulnative_conn_handoff(ptr, fd)) }
      @io = Socket.for_fd(fd.read(:int32))
      @io.autoclose = true
      @io.sync = true
      @io
    end
    alias handoff to_io

    # Closes the connection: sends TLS close_notify (unless {#close_write} already did; waiting at most
    # {CLOSE_TIMEOUT} seconds), so the peer reads a clean end of stream, then shuts the socket both ways, so a
    # read or write blocked in another thread fails at once with {ClosedError}. Idempotent and thread-safe. Does
    # nothing to the socket returned by {#to_io}.
    # @return [nil]
    def close
      super
    end

    # @return [String]
    def inspect
      peer_text = @info ? " #{@info[:peer][:service]}@#{@info[:peer_address]}" : ""
      "#<#{self.class.name}#{peer_text}#{closed? ? " (closed)" : ""}#{@io ? " (handed off)" : ""}>"
    end

    private

    # One read: nil at end of stream.
    def read_some(maxlen, timeout)
      maxlen = READ_CHUNK if maxlen.nil? || maxlen > READ_CHUNK
      return String.new(encoding: Encoding::BINARY) if maxlen <= 0

      buf = FFI::MemoryPointer.new(:uint8, maxlen)
      n = FFI::MemoryPointer.new(:size_t)
      use do |ptr|
        ConsulNative.sliced(timeout, Native::TIMEOUT) { |ms| Native.consulnative_conn_read(ptr, buf, maxlen, ms, n) }
      end
      count = n.read(:size_t)
      count.zero? ? nil : buf.read_bytes(count)
    end

    # consulnative_conn_close may run while other threads are in read or write: that is how they are woken. Its
    # result only says whether close_notify went out; the connection is closed either way.
    def before_free(pointer, _alone)
      return if @io # a no-op after the handoff: the socket is the application's

      Native.consulnative_conn_close(pointer, Native.ms(CLOSE_TIMEOUT))
    end
  end
end
