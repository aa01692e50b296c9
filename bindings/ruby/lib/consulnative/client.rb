# frozen_string_literal: true

module ConsulNative
  # A client of one Consul agent. It owns the CA roots watch shared by its services.
  #
  # @example
  #   client = ConsulNative::Client.new(address: "127.0.0.1:8500", token: ENV["TOKEN"])
  #   client.service("web") { |svc| svc.wait_ready(timeout: 10) }
  class Client < Handle
    # Starts from the `CONSUL_*` environment variables (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT`,
    # ...); keyword arguments win. Keys are the C API's configuration keys: `address` (`host:port`, `http://`,
    # `https://`, `unix://`), `token`, `token_file`, `datacenter`, `namespace`, `partition`, `http_auth`,
    # `ca_file`, `ca_path`, `client_cert`, `client_key`, `tls_server_name`, `tls_verify` (true/false), and in
    # milliseconds `request_timeout_ms`, `blocking_wait_ms`, `retry_max_ms`, `handshake_timeout_ms`,
    # `authorize_timeout_ms`. Limits of every listener (positive integers): `max_handshakes` (256: connections
    # between accept and admission; beyond it new ones wait in the kernel backlog), `accept_queue` (128),
    # `refusal_queue` (256: refusals waiting for the refusal block), `max_authorizations` (16),
    # `peer_check_threads` (2), `busy_handshake_timeout_ms` (1000: handshakes cut when every slot is taken); of
    # peer certificate chains: `max_chain_certs` (8) and `max_chain_bytes` (32768). A nil value clears an
    # optional key.
    #
    # Nothing is sent to the agent until a service starts or a call is made.
    # @param config [Hash{Symbol=>String,Integer,Boolean,nil}]
    # @raise [InvalidArgument] for an unknown key or a bad value
    def initialize(**config)
      cfg = Native.out_pointer { |out| Native.consulnative_config_new(out) }
      begin
        config.each do |key, value|
          value = value.to_s unless value.nil?
          Native.check(Native.consulnative_config_set(cfg, key.to_s, value), "config key #{key}")
        end
        super(Native.out_pointer { |out| Native.consulnative_client_new(cfg, out) }, :consulnative_client_free)
      ensure
        Native.consulnative_config_free(cfg)
      end
    end

    # Creates a client, yields it, and closes it when the block ends.
    # @yieldparam client [Client]
    # @return the block's value, or the client without a block
    def self.open(**config)
      client = new(**config)
      return client unless block_given?

      begin
        yield client
      ensure
        client.close
      end
    end

    # Starts watching the leaf certificate of service `name` (and the CA roots). The service is not ready at
    # once: call {Service#wait_ready}. With a block, yields the service and closes it when the block ends.
    # @param name [String]
    # @yieldparam service [Service]
    # @return [Service] or the block's value
    def service(name)
      svc = use { |ptr| Service.new(Native.out_pointer { |out| Native.consulnative_service_new(ptr, name, out) }, name) }
      return svc unless block_given?

      begin
        yield svc
      ensure
        svc.close
      end
    end

    # Registers a Connect-native service with the agent.
    # @param name [String]
    # @param port [Integer]
    # @param id [String, nil] defaults to the name
    # @param address [String, nil] defaults to the agent's address
    # @param tags [Array<String>, String, nil]
    # @param check [String, nil] `"tcp"`, `"tcp:<interval ms>"`, `"ttl:<ttl ms>"` (check ID `service:<id>`)
    # @return [String] the service ID
    def register(name, port:, id: nil, address: nil, tags: nil, check: nil)
      tags = tags.join(",") if tags.is_a?(Array)
      use do |ptr|
        Native.check(Native.consulnative_client_register(ptr, name, id, address, port, tags, check))
      end
      id || name
    end

    # Deregisters a service by its ID.
    # @return [nil]
    def deregister(service_id)
      use { |ptr| Native.check(Native.consulnative_client_deregister(ptr, service_id)) }
      nil
    end

    # Marks a TTL check passing.
    # @param check_id [String] e.g. `"service:web-1"`
    # @param note [String, nil]
    # @return [nil]
    def pass_ttl(check_id, note: nil)
      use { |ptr| Native.check(Native.consulnative_client_pass_ttl(ptr, check_id, note)) }
      nil
    end
  end
end
