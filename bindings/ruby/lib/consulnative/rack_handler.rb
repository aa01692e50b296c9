# frozen_string_literal: true

require "rack"
require "rack/handler/webrick"
require "webrick"
require "consulnative"

module ConsulNative
  # Serves a Rack application on a Connect listener with WEBrick (Ruby's HTTP server, which can serve a
  # connection it did not accept: `WEBrick::HTTPServer#run(socket)`), one thread per connection, HTTP/1.1 keep-alive.
  # Every connection is verified and authorized by the agent before its first request is read; each request's env
  # carries the caller's identity: `env["consulnative.peer"]` (a {Peer}), `env["consulnative.peer_uri"]`,
  # `env["consulnative.peer_service"]`; `REMOTE_ADDR` is the caller's TCP address.
  #
  # @example
  #   require "consulnative/rack_handler"
  #   server = ConsulNative::RackHandler.new(db, app, "127.0.0.1:8443")
  #   server.serve   # or server.start (a thread); server.close
  #
  # Also registered as the Rack handler `consulnative` (`Rack::Handler.get("consulnative").run(app, Service: db,
  # Host: "127.0.0.1", Port: 8443)`). Why not Puma: it serves only sockets it listens on.
  class RackHandler
    # Adds the caller's identity, kept per connection thread, to every request's env.
    class PeerEnv
      # @param app [#call] the Rack application
      def initialize(app)
        @app = app
      end

      # @param env [Hash]
      def call(env)
        peer, address = Thread.current[:consulnative_peer]
        if peer
          env["consulnative.peer"] = peer
          env["consulnative.peer_uri"] = peer.uri
          env["consulnative.peer_service"] = peer.service
          env["REMOTE_ADDR"] = address
        end
        @app.call(env)
      end
    end

    # A WEBrick server that never listens: it serves the connections handed to it.
    class Server < WEBrick::HTTPServer
      # @param config [Hash] WEBrick configuration
      def initialize(config)
        super(config.merge(DoNotListen: true))
        @status = :Running
      end

      # Makes connections end their keep-alive loops.
      def stop_serving
        @status = :Shutdown
      end
    end

    # Rack's handler interface: serves until the listener is closed.
    # @param app [#call]
    # @param options [Hash] `:Service` (required), `:Host` (default 127.0.0.1), `:Port` (default 0)
    def self.run(app, **options)
      service = options.fetch(:Service) { raise ArgumentError, "the consulnative handler needs Service: (a ready service)" }
      address = "#{options.fetch(:Host, "127.0.0.1")}:#{options.fetch(:Port, 0)}"
      server = new(service, app, address)
      yield server if block_given?
      server.serve
    end

    # @return [Listener] the Connect listener (counts, refusal callbacks, address)
    attr_reader :listener

    # @param service [Service] the identity to serve as (ready)
    # @param app [#call] the Rack application
    # @param address [String] `host:port` to listen on
    def initialize(service, app, address = "127.0.0.1:0")
      @listener = service.listen(address)
      @server = Server.new(Logger: WEBrick::Log.new(File::NULL), AccessLog: [])
      @server.mount("/", Rack::Handler::WEBrick, PeerEnv.new(app))
      @ios = {}
      @lock = Mutex.new
    end

    # @return [Array(String, Integer)] the bound host and port
    def address
      @listener.address
    end

    # Accepts verified connections and serves each on its own thread until {#close}.
    # @return [nil]
    def serve
      loop do
        conn = begin
          @listener.accept
        rescue ClosedError, Error
          break
        end
        peer = conn.peer
        remote = conn.peer_address.first
        io = conn.to_io
        @lock.synchronize { @ios[io] = true }
        Thread.new { serve_connection(io, peer, remote) }
      end
      nil
    end

    # Runs {#serve} on a thread.
    # @return [self]
    def start
      @thread = Thread.new { serve }
      self
    end

    # Stops accepting and ends open connections.
    # @return [nil]
    def close
      @listener.close
      @server.stop_serving
      ios = @lock.synchronize { @ios.keys }
      ios.each do |io|
        io.shutdown(:RDWR)
      rescue IOError, SystemCallError
        nil
      end
      @thread&.join(5)
      nil
    end

    private

    def serve_connection(io, peer, remote)
      Thread.current[:consulnative_peer] = [peer, remote]
      @server.run(io)
    rescue IOError, SystemCallError
      nil
    ensure
      @lock.synchronize { @ios.delete(io) }
      io.close unless io.closed?
    end
  end
end

Rack::Handler.register("consulnative", "ConsulNative::RackHandler") if defined?(Rack::Handler)
