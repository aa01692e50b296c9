# frozen_string_literal: true

require_relative "test_helper"
require "openssl"

class ConnectTest < Minitest::Test
  include ConsulNativeTestHelper

  def test_allowed_connection_carries_data_both_ways_and_both_sides_see_the_peer_identity
    agent, _client, db, web = agent_db_web
    agent.allow("web", "db")
    listener = owned(db.listen("127.0.0.1:0"))
    host, port = listener.address
    assert_equal "127.0.0.1", host
    assert_operator port, :>, 0

    server = Thread.new do
      listener.accept(timeout: 10) do |conn|
        got = conn.read(4)
        conn.write("pong")
        [got, conn.peer]
      end
    end
    answer, server_peer_of_us = web.dial_address("#{host}:#{port}", expected: "db", timeout: 5) do |conn|
      conn.write("ping")
      [conn.read(4), conn.peer]
    end
    got, seen = server.value
    assert_equal "ping", got
    assert_equal "pong", answer
    assert_equal "web", seen.service
    assert_equal "dc1", seen.datacenter
    assert_equal agent.trust_domain, seen.trust_domain
    assert seen.uri.end_with?("/ns/default/dc/dc1/svc/web"), seen.uri
    assert_equal "db", server_peer_of_us.service
    assert_equal db.serial, server_peer_of_us.serial
    assert_equal({ accepted: 1, refused: 0 }, listener.counts)
  end

  def test_denied_intention_never_reaches_accept_and_the_refusal_callback_gets_the_agents_reason
    agent, _client, db, web = agent_db_web
    agent.deny("web", "db")
    listener = owned(db.listen("127.0.0.1:0"))
    refusals = Queue.new
    listener.on_refused { |r| refusals << r }
    accepted = Thread.new do
      listener.accept(timeout: 3)
    rescue ConsulNative::Error => e
      e
    end
    begin
      web.dial_address(listener.address_string, expected: "db", timeout: 5) do |conn|
        conn.write("secret") rescue nil # rubocop:disable Style/RescueModifier
        data = begin
          conn.read(16, timeout: 5)
        rescue ConsulNative::Error
          nil
        end
        assert_nil data, "a denied client must not get data"
      end
    rescue ConsulNative::Error
      nil # with TLS 1.2-style failures the dial itself fails: also a refusal
    end
    assert_kind_of ConsulNative::TimeoutError, accepted.value, "the denied connection never reaches accept"
    refusal = Timeout.timeout(5) { refusals.pop }
    assert_equal ConsulNative::AuthorizationDenied, refusal.error_class
    assert_equal 12, refusal.code
    assert_equal "authorization denied", refusal.code_name
    assert refusal.peer_uri.end_with?("/svc/web"), refusal.peer_uri
    assert_match(/\A127\.0\.0\.1:\d+\z/, refusal.peer_address)
    assert_includes refusal.reason, "Matched L4 intention: default/web => default/db"
    assert_includes refusal.reason, "Action: DENY"
    assert_equal({ accepted: 0, refused: 1 }, listener.counts)

    # Deleting the intention falls back to the agent's default (allow here).
    agent.delete_intention("web", "db")
    t = Thread.new { listener.accept(timeout: 10, &:peer) }
    web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.write("x") }
    assert_equal "web", t.value.service
  end

  # Ruby's own OpenSSL as a Connect client that presents `cert`/`key` (or none). Returns what it read, or the
  # exception it got: the listener must refuse before any application byte flows.
  def raw_tls_client(address, cert: nil, key: nil)
    host, port = address
    tcp = TCPSocket.new(host, port)
    ctx = OpenSSL::SSL::SSLContext.new
    ctx.verify_mode = OpenSSL::SSL::VERIFY_NONE
    if cert
      ctx.cert = OpenSSL::X509::Certificate.new(cert)
      ctx.key = OpenSSL::PKey.read(key)
      chain = cert.scan(/-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----/m).drop(1)
      ctx.extra_chain_cert = chain.map { |c| OpenSSL::X509::Certificate.new(c) } unless chain.empty?
    end
    ssl = OpenSSL::SSL::SSLSocket.new(tcp, ctx)
    ssl.sync_close = true
    begin
      ssl.connect
      ssl.write("hello")
      ssl.sysread(16)
    rescue StandardError => e
      e
    ensure
      ssl.close rescue nil # rubocop:disable Style/RescueModifier
    end
  end

  def test_client_without_a_certificate_is_refused_at_the_handshake
    _agent, _client, db, = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    refusals = listener.record_refusals
    result = raw_tls_client(listener.address)
    assert_kind_of Exception, result, "no application data for a client without a certificate"
    assert eventually(5) { refusals.size == 1 }, "the refusal is reported"
    refusal = refusals.first
    assert_equal ConsulNative::HandshakeError, refusal.error_class, refusal.inspect
    assert_includes refusal.message, "no client certificate"
    assert_kind_of OpenSSL::SSL::SSLError, result
    assert_nil refusal.peer_uri
    assert_raises(ConsulNative::TimeoutError) { listener.accept(timeout: 0.2) }
    assert_equal 0, listener.counts[:accepted]
  end

  def test_client_with_a_leaf_from_a_foreign_ca_is_refused
    _agent, _client, db, = agent_db_web
    foreign = start_agent
    leaf = foreign.issue_leaf("web", not_before: Time.now - 60, not_after: Time.now + 3600)
    assert_includes leaf["CertPEM"], "BEGIN CERTIFICATE"
    assert_includes leaf.fetch("ServiceURI", foreign.trust_domain), foreign.trust_domain
    listener = owned(db.listen("127.0.0.1:0"))
    refusals = listener.record_refusals
    result = raw_tls_client(listener.address, cert: leaf["CertPEM"], key: leaf["PrivateKeyPEM"])
    assert_kind_of Exception, result, "no application data for a foreign certificate"
    assert eventually(5) { refusals.size == 1 }
    refusal = refusals.first
    assert_equal ConsulNative::CertificateInvalid, refusal.error_class, refusal.inspect
    assert_includes refusal.message, foreign.trust_domain, "the message names the foreign certificate"
    assert_includes refusal.message, "not issued by"
    assert_equal({ accepted: 0, refused: 1 }, listener.counts)
  end

  def test_a_leaf_from_our_own_ca_presented_by_ruby_openssl_is_admitted
    agent, _client, db, = agent_db_web
    leaf = agent.issue_leaf("web")
    listener = owned(db.listen("127.0.0.1:0"))
    server = Thread.new { listener.accept(timeout: 10) { |c| [c.read(5), c.write("ok"), c.peer.service] } }
    result = raw_tls_client(listener.address, cert: leaf["CertPEM"], key: leaf["PrivateKeyPEM"])
    assert_equal "ok", result
    assert_equal ["hello", 2, "web"], server.value
  end

  def test_dialer_refuses_a_server_whose_identity_is_not_the_expected_service
    _agent, client, _db, web = agent_db_web
    impostor = ready_service(client, "cache")
    listener = owned(impostor.listen("127.0.0.1:0"))
    err = assert_raises(ConsulNative::IdentityMismatch) do
      web.dial_address(listener.address_string, expected: "db", timeout: 5)
    end
    assert_equal 11, err.code
    assert_includes err.message, "svc/cache"
    assert_includes err.message, "db"
    assert_equal ConsulNative.result_name(11), err.code_name

    want = "spiffe://#{impostor.status[:trust_domain]}/ns/default/dc/dc1/svc/db"
    assert_raises(ConsulNative::IdentityMismatch) do
      web.dial_address(listener.address_string, expected: want, timeout: 5)
    end
  end

  def test_peer_check_block_can_reject_a_client_the_agent_allowed
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    refusals = listener.record_refusals
    seen = Queue.new
    listener.peer_check do |uri, service|
      seen << [uri, service]
      service == "api"
    end
    web.dial_address(listener.address_string, expected: "db", timeout: 5) do |c|
      c.read(1, timeout: 3)
    rescue ConsulNative::Error
      nil
    end
    assert eventually(5) { refusals.size == 1 }
    assert_equal ConsulNative::RejectedByApplication, refusals.first.error_class
    uri, service = seen.pop
    assert_equal "web", service
    assert uri.end_with?("/svc/web")

    # Clearing the check admits the client.
    listener.peer_check
    t = Thread.new { listener.accept(timeout: 10) { |c| c.read(2) } }
    web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.write("hi") }
    assert_equal "hi", t.value
  end

  def test_dial_by_service_name_uses_registered_healthy_instances
    _agent, client, db, web = agent_db_web
    assert_raises(ConsulNative::NoInstances) { web.dial("db", timeout: 5) }
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    id = client.register("db", id: "db-1", address: "127.0.0.1", port: listener.port, tags: %w[ruby test],
                               check: "ttl:30000")
    assert_equal "db-1", id
    client.pass_ttl("service:db-1", note: "ruby says hi")
    reply = web.dial("db", timeout: 5) do |conn|
      conn << "echo"
      conn.read(4)
    end
    assert_equal "echo", reply
    client.deregister("db-1")
    assert_raises(ConsulNative::NoInstances) { web.dial("db", timeout: 5) }
  end

  def test_half_close_propagates_and_read_returns_everything_until_end_of_stream
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    conn = owned(web.dial_address(listener.address_string, expected: "db", timeout: 5))
    payload = "x" * 200_000
    writer = Thread.new { conn.write(payload) && conn.close_write }
    assert_equal payload, conn.read(timeout: 10)
    writer.join
    assert_nil conn.read(1, timeout: 5), "end of stream"
    assert_raises(EOFError) { conn.readpartial(1) }
  end

  def test_read_timeout_raises_timeout_error_and_the_connection_stays_usable
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    conn = owned(web.dial_address(listener.address_string, expected: "db", timeout: 5))
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    err = assert_raises(ConsulNative::TimeoutError) { conn.readpartial(10, timeout: 0.6) }
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    assert_in_delta 0.6, elapsed, 0.4
    assert_equal 8, err.code
    refute_empty err.message
    conn.write("still")
    assert_equal "still", conn.read(5, timeout: 5)
  end
end
