# frozen_string_literal: true

require "json"
require "net/http"
require "uri"
require_relative "dev_agent/child_process"

module ConsulNative
  # A Consul-compatible dev agent (Connect CA, intentions, catalog, ACL, faults) for tests and demos: no Consul
  # needed. It runs the `consulnative-dev-agent` binary as a child process, the way Consul's own test helpers run
  # `consul agent -dev`, and drives it over HTTP.
  #
  # The binary is found through `CONSULNATIVE_DEV_AGENT` (a path), else the copy inside the gem, else beside the
  # loaded libconsulnative (`cargo build` puts it there), else on `PATH`. The child exits when this process does, however it ends.
  #
  # @example
  #   ConsulNative::DevAgent.open do |agent|
  #     agent.deny("web", "db")
  #     client = agent.client
  #   end
  class DevAgent
    # Seconds an HTTP control call may take (connect, then answer).
    HTTP_TIMEOUT = 10

    # Starts an agent and waits until it listens.
    # @param address [String, nil] HTTP address `ip:port`; nil means `127.0.0.1:0` (a free port, see {#address})
    # @param token [String, nil] makes leaf, authorize, register and intention calls require this ACL token
    # @param default_allow [Boolean] decides connections no intention matches
    # @param leaf_ttl [Numeric, nil] leaf lifetime in seconds, at least 1 (nil: 72 hours)
    # @raise [NotFound] no binary; [InvalidArgument] it refused an argument; [IoError] it could not start
    def initialize(address: nil, token: nil, default_allow: true, leaf_ttl: nil)
      args = ["--http-addr", address || "127.0.0.1:0", "--exit-on-stdin-eof"]
      args.push("--default-policy", "deny") unless default_allow
      args.push("--leaf-ttl", self.class.go_duration(leaf_ttl)) unless leaf_ttl.nil?
      @token = token
      @lock = Mutex.new
      @stopped = false
      @closed = false
      @child, @address = ChildProcess.start(args, token)
      ObjectSpace.define_finalizer(self, self.class.finalizer(@child))
      begin
        # Fixed for the agent's life (a CA rotation keeps it); asked now so it answers even under faults or stopped.
        @trust_domain = JSON.parse(request(:get, "/v1/agent/connect/ca/roots")).fetch("TrustDomain")
      rescue StandardError
        close
        raise
      end
    end

    # Starts an agent, yields it and stops it when the block ends.
    # @yieldparam agent [DevAgent]
    # @return the block's value, or the agent without a block
    def self.open(**options)
      agent = new(**options)
      return agent unless block_given?

      ConsulNative.with_block(agent) { |a| yield a }
    end

    # @return [String] the HTTP address as `ip:port` (for `Client.new(address:)` or `CONSUL_HTTP_ADDR`)
    def address
      check_open
      @address
    end

    # @return [String] the CA's trust domain (`<uuid>.consul`)
    def trust_domain
      check_open
      @trust_domain
    end

    # @return [Integer] the agent's process ID
    def pid
      @child.pid
    end

    # A client of this agent, with its token; other configuration keys as for {Client.new}.
    # @return [Client] (closed after the block, with a block)
    def client(**config, &block)
      config = { address: address, token: @token }.merge(config)
      config.delete(:token) if config[:token].nil?
      Client.open(**config, &block)
    end

    # Creates or replaces the intention `source => destination` as allow (`"*"` matches any).
    # @return [self]
    def allow(source, destination)
      set_intention(source, destination, true)
    end

    # Creates or replaces the intention `source => destination` as deny.
    # @return [self]
    def deny(source, destination)
      set_intention(source, destination, false)
    end

    # @return [self]
    def set_intention(source, destination, allow)
      body = JSON.generate("Action" => allow ? "allow" : "deny")
      request(:put, "/v1/connect/intentions/exact", { source: source, destination: destination }, body)
      self
    end

    # Deletes the intention `source => destination` (no-op if absent).
    # @return [self]
    def delete_intention(source, destination)
      request(:delete, "/v1/connect/intentions/exact", { source: source, destination: destination })
      self
    end

    # Rotates the CA: a new active root, the old one kept, a cross-signed intermediate, every leaf reissued.
    # @return [self]
    def rotate_ca
      request(:put, "/_devagent/rotate-ca")
      self
    end

    # Makes the agent misbehave until {#clear_faults}.
    # @param endpoint [String, Symbol] `all`, `roots`, `leaf` or `authorize`
    # @param kind [String, Symbol] `status` (answer HTTP `value` with `body`), `malformed`, `delay` (`value` ms),
    #   `backwards_index`
    # @return [self]
    # @raise [InvalidArgument] for an unknown endpoint or kind, or a bad status
    def set_fault(endpoint, kind, value = 0, body = nil)
      query = { endpoint: endpoint.to_s }
      case kind.to_s
      when "status" then query.update(status: Integer(value), body: body.to_s)
      when "malformed" then query[:malformed] = 1
      when "delay" then query[:delay] = "#{Integer(value)}ms"
      when "backwards_index" then query[:reset_index] = 1
      else raise InvalidArgument, "unknown fault kind #{kind.inspect} (status, malformed, delay, backwards_index)"
      end
      request(:put, "/_devagent/fault", query)
      self
    end
    alias fault set_fault

    # @return [self]
    def clear_faults
      request(:delete, "/_devagent/fault")
      self
    end

    # Signs an ad-hoc leaf for `service` with the active CA (e.g. to present with Ruby's own OpenSSL).
    # @param service [String]
    # @param not_before [Time, Integer] (may be in the past)
    # @param not_after [Time, Integer]
    # @return [Hash{String=>Object}] the agent's leaf JSON: `CertPEM`, `PrivateKeyPEM`, `ServiceURI`, ...
    def issue_leaf(service, not_before: Time.now - 60, not_after: Time.now + 3600)
      path = "/_devagent/issue-leaf/#{self.class.path_escape(service)}"
      JSON.parse(request(:get, path, { not_before: not_before.to_i, not_after: not_after.to_i }))
    end

    # Stops the agent: the process exits (closed stdin, then SIGTERM/SIGKILL after a bounded wait) and is reaped,
    # so its port is closed and clients see it as down. {#address} and {#trust_domain} still answer; the other
    # calls raise {AgentUnreachable}. Idempotent.
    # @return [self]
    def stop
      check_open
      @lock.synchronize { @stopped = true }
      @child.stop
      self
    end

    # Stops the agent; afterwards every call raises {ClosedError}. Idempotent.
    # @return [nil]
    def close
      return nil if @lock.synchronize { @closed.tap { @closed = @stopped = true } }

      @child.stop
      ObjectSpace.undefine_finalizer(self)
      nil
    end

    # @return [Boolean] whether {#close} was called
    def closed?
      @closed
    end

    # @return [String]
    def inspect
      "#<#{self.class.name} #{closed? ? "closed" : "#{@address} pid #{pid}#{@stopped ? " (stopped)" : ""}"}>"
    end

    # The finalizer: closes the child's stdin, so it exits (the reaper thread collects it). Built in a class method
    # so it does not capture the agent.
    # @api private
    def self.finalizer(child)
      proc { child.close_stdin }
    end

    # @api private
    # Seconds as a Go duration for `--leaf-ttl`.
    def self.go_duration(seconds)
      raise ArgumentError, "leaf_ttl must be a number of seconds, got #{seconds.inspect}" unless seconds.is_a?(Numeric)
      raise ArgumentError, "leaf_ttl must be at least 1 s (the dev agent's minimum), got #{seconds}" unless seconds >= 1

      "#{(seconds * 1000).round}ms"
    end

    # @api private
    def self.path_escape(text)
      text.to_s.b.gsub(/[^A-Za-z0-9\-._~]/n) { |c| format("%%%02X", c.ord) }
    end

    private

    def check_open
      raise ClosedError.new("devagent is closed", ClosedError::CODE) if @closed
    end

    # One HTTP call to the agent; returns the body of a 2xx answer, raises with the agent's answer otherwise:
    # 400 {InvalidArgument}, 403 {AgentPermissionDenied}, others {AgentError}, no answer {AgentUnreachable}.
    def request(method, path, query = nil, body = nil)
      check_open
      target = query ? "#{path}?#{URI.encode_www_form(query)}" : path
      what = "dev agent #{@address} (pid #{pid}): #{method.to_s.upcase} #{target}"
      raise AgentUnreachable, "#{what}: the agent was stopped" if @stopped

      headers = { "Content-Type" => "application/json" }
      headers["X-Consul-Token"] = @token if @token
      response = http_call(method, target, body, headers, what)
      return response.body.to_s if response.is_a?(Net::HTTPSuccess)

      klass = { "400" => InvalidArgument, "403" => AgentPermissionDenied }.fetch(response.code, AgentError)
      raise klass, "#{what}: HTTP #{response.code}: #{response.body.to_s.strip}"
    end

    def http_call(method, target, body, headers, what)
      host, port = ConsulNative.split_address(@address)
      http = Net::HTTP.new(host, port, nil) # nil: never through an http_proxy from the environment
      http.open_timeout = HTTP_TIMEOUT
      http.read_timeout = HTTP_TIMEOUT
      http.write_timeout = HTTP_TIMEOUT if http.respond_to?(:write_timeout=)
      http.start { |h| h.send_request(method.to_s.upcase, target, body, headers) }
    rescue SystemCallError, IOError, SocketError, Net::OpenTimeout, Net::ReadTimeout, Net::WriteTimeout,
           Net::HTTPBadResponse => e
      raise AgentUnreachable, "#{what}: #{e.class}: #{e.message}"
    end
  end
end
