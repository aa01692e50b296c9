# frozen_string_literal: true

require_relative "test_helper"

class IoTest < Minitest::Test
  include ConsulNativeTestHelper

  def connected_pair
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    server = Thread.new { listener.accept(timeout: 10) }
    client = owned(web.dial_address(listener.address_string, expected: "db", timeout: 5))
    [owned(server.value), client]
  end

  def test_io_select_works_on_the_handed_off_socket
    server, client = connected_pair
    io = server.to_io
    assert_kind_of Socket, io
    assert_same io, server.to_io, "to_io is idempotent"
    assert_nil IO.select([io], nil, nil, 0.2), "nothing to read yet"
    client.write("tick")
    ready, = IO.select([io], nil, nil, 5)
    assert_equal [io], ready
    assert_equal "tick", io.read_nonblock(16)
    _, writable, = IO.select(nil, [io], nil, 5)
    assert_equal [io], writable
    io.write("tock")
    assert_equal "tock", client.read(4, timeout: 5)

    # After the handoff the handle only answers info; the peer stays known.
    assert_equal "web", server.peer.service
    assert_raises(ConsulNative::ClosedError) { server.readpartial(1) }
    io.close
  end

  def test_a_conn_can_be_passed_to_io_select_directly
    server, client = connected_pair
    client.write("direct")
    ready, = IO.select([server], nil, nil, 5)
    assert_equal [server], ready
    assert_equal "direct", server.to_io.readpartial(6)
    server.to_io.close
  end

  def test_to_io_interoperates_with_plain_ruby_socket_code
    server, client = connected_pair
    io = server.to_io
    client_io = client.to_io
    # Line-oriented plain socket code on both sides.
    client_io.puts "GET /hello"
    assert_equal "GET /hello\n", io.gets
    io.print "200 OK\r\n", "body\r\n"
    assert_equal "200 OK\r\n", client_io.gets
    assert_equal "body\r\n", client_io.gets
    # EOF and half-close pass through: close_write on one side is end of stream on the other.
    io.close_write
    assert_nil client_io.gets
    assert client_io.eof?
    client_io.write("late")
    client_io.close_write
    assert_equal "late", io.read
    # Big transfers with IO.copy_stream through a pipe-like path.
    io.close
    client_io.close
  end

  def test_large_transfer_through_handed_off_sockets_with_copy_stream
    server, client = connected_pair
    io = server.to_io
    payload = Random.new(42).bytes(300_000)
    echo = Thread.new do
      IO.copy_stream(io, io)
      io.close_write
    end
    client_io = client.to_io
    writer = Thread.new do
      client_io.write(payload)
      client_io.close_write
    end
    received = client_io.read
    writer.join
    echo.join
    assert_equal payload.bytesize, received.bytesize
    assert received == payload
    [io, client_io].each(&:close)
  end

  def test_conn_info_reports_addresses_and_alpn
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0", alpn: %w[h2 http/1.1]))
    server = Thread.new { listener.accept(timeout: 10) }
    client = owned(web.dial_address(listener.address_string, expected: "db", timeout: 5, alpn: ["http/1.1"]))
    conn = owned(server.value)
    assert_equal "http/1.1", client.alpn
    assert_equal "http/1.1", conn.alpn
    assert_equal client.local_address, conn.peer_address
    assert_equal listener.address, client.peer_address
    assert_equal "db", client.info[:peer][:service]
  end
end
