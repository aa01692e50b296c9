# frozen_string_literal: true

require "net/http"
require "consulnative"

module ConsulNative
  # A `Net::HTTP` whose host is a Connect service name: `connect` dials the service through the agent's catalog
  # (mutual TLS, the server's SPIFFE identity checked) instead of TCP; everything else is Net::HTTP (keep-alive with
  # `start`, `request`, `get`, streaming bodies). The `Host` header is the service name.
  #
  # @example
  #   require "consulnative/net_http"
  #   http = ConsulNative::HTTP.new(web, "db", timeout: 5)
  #   http.start { |h| puts h.get("/health").body; h.peer.service }   # => "db"
  #
  # A server that hangs up before answering because the agent denies `service` => `target` raises
  # {AuthorizationDenied} with the agent's reason.
  class HTTP < Net::HTTP
    # @return [Service] the identity dialing
    attr_reader :service
    # @return [Peer, nil] the server's verified identity once connected
    attr_reader :peer

    # Net::HTTP.new takes proxy arguments; a Connect connection never goes through a proxy.
    # @return [HTTP]
    def self.new(service, target, timeout: nil, datacenter: nil)
      http = allocate
      http.__send__(:initialize, service, target, timeout: timeout, datacenter: datacenter)
      http
    end

    # @param service [Service] this program's identity (ready)
    # @param target [String] the destination service
    # @param timeout [Numeric, nil] seconds for the dial, reads and writes (nil: Net::HTTP's defaults)
    # @param datacenter [String, nil] where to discover instances
    def initialize(service, target, timeout: nil, datacenter: nil)
      super(target, 80)
      @service = service
      @datacenter = datacenter
      @peer = nil
      return unless timeout

      self.open_timeout = timeout
      self.read_timeout = timeout
      self.write_timeout = timeout
    end

    # @return [false] never through an HTTP proxy
    def proxy?
      false
    end

    # As Net::HTTP#request; a hang-up the agent's intentions explain raises {AuthorizationDenied}.
    def request(req, body = nil, &block)
      super
    rescue EOFError, Errno::ECONNRESET, Errno::EPIPE => e
      begin
        @service.authorize(address)
      rescue AuthorizationDenied => denied
        raise denied
      rescue Error
        raise e
      end
      raise e
    end

    private

    # Dials the service instead of opening a TCP connection (Net::HTTP calls it from `start`).
    def connect
      conn = @service.dial(address, timeout: open_timeout, datacenter: @datacenter)
      @peer = conn.peer
      io = conn.to_io
      @socket = Net::BufferedIO.new(io, read_timeout: @read_timeout, write_timeout: @write_timeout,
                                        continue_timeout: @continue_timeout, debug_output: @debug_output)
      on_connect
    end
  end
end
