# frozen_string_literal: true

module ConsulNative
  # An in-process Consul-compatible dev agent (Connect CA, intentions, catalog, ACL, faults) on its own thread,
  # for tests and demos: no Consul needed.
  #
  # @example
  #   ConsulNative::DevAgent.open do |agent|
  #     agent.deny("web", "db")
  #     client = agent.client
  #   end
  class DevAgent < Handle
    # Starts an agent.
    # @param address [String, nil] HTTP address; nil means `127.0.0.1:0` (a free port, see {#address})
    # @param token [String, nil] makes leaf, authorize, register and intention calls require this ACL token
    # @param default_allow [Boolean] decides connections no intention matches
    # @param leaf_ttl [Numeric, nil] leaf lifetime in seconds (nil: 72 hours)
    def initialize(address: nil, token: nil, default_allow: true, leaf_ttl: nil)
      ttl_ms = leaf_ttl ? Native.ms(leaf_ttl) : 0
      ptr = Native.out_pointer { |out| Native.consulnative_dev_agent_start(address, token, default_allow, ttl_ms, out) }
      super(ptr, :consulnative_dev_agent_free)
      @token = token
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
      @address ||= use { |ptr| Native.read_text { |b, l, n| Native.consulnative_dev_agent_address(ptr, b, l, n) } }
    end

    # @return [String] the CA's trust domain (`<uuid>.consul`)
    def trust_domain
      use { |ptr| Native.read_text { |b, l, n| Native.consulnative_dev_agent_trust_domain(ptr, b, l, n) } }
    end

    # A client of this agent (its token, fast watch timing unless overridden).
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
      use { |ptr| Native.check(Native.consulnative_dev_agent_set_intention(ptr, source, destination, allow ? true : false)) }
      self
    end

    # Deletes the intention `source => destination` (no-op if absent).
    # @return [self]
    def delete_intention(source, destination)
      use { |ptr| Native.check(Native.consulnative_dev_agent_delete_intention(ptr, source, destination)) }
      self
    end

    # Rotates the CA: a new active root, the old one kept, a cross-signed intermediate, every leaf reissued.
    # @return [self]
    def rotate_ca
      use { |ptr| Native.check(Native.consulnative_dev_agent_rotate_ca(ptr)) }
      self
    end

    # Makes the agent misbehave until {#clear_faults}.
    # @param endpoint [String, Symbol] `all`, `roots`, `leaf` or `authorize`
    # @param kind [String, Symbol] `status` (answer HTTP `value` with `body`), `malformed`, `delay` (`value` ms),
    #   `backwards_index`
    # @return [self]
    def set_fault(endpoint, kind, value = 0, body = nil)
      use { |ptr| Native.check(Native.consulnative_dev_agent_set_fault(ptr, endpoint.to_s, kind.to_s, value, body)) }
      self
    end
    alias fault set_fault

    # @return [self]
    def clear_faults
      use { |ptr| Native.check(Native.consulnative_dev_agent_clear_faults(ptr)) }
      self
    end

    # Signs an ad-hoc leaf for `service` with the active CA (e.g. to present with Ruby's own OpenSSL).
    # @param service [String]
    # @param not_before [Time, Integer] (may be in the past)
    # @param not_after [Time, Integer]
    # @return [Hash{String=>Object}] the agent's leaf JSON: `CertPEM`, `PrivateKeyPEM`, `ServiceURI`, ...
    def issue_leaf(service, not_before: Time.now - 60, not_after: Time.now + 3600)
      json = use do |ptr|
        Native.read_text do |b, l, n|
          Native.consulnative_dev_agent_issue_leaf(ptr, service, not_before.to_i, not_after.to_i, b, l, n)
        end
      end
      JSON.parse(json)
    end

    # Stops the agent: its port closes and clients see it as down. Idempotent; {#close} also frees it.
    # @return [self]
    def stop
      use { |ptr| Native.consulnative_dev_agent_stop(ptr) }
      self
    end

    # @return [String]
    def inspect
      "#<#{self.class.name} #{closed? ? "closed" : address}>"
    end
  end
end
