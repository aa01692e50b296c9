# frozen_string_literal: true

require_relative "test_helper"

# One meaning of `timeout:` in every public method, the same as the Python binding: nil waits forever, 0 does
# not wait, a negative number raises ArgumentError (it used to be clamped to 0 silently).
class TimeoutsTest < Minitest::Test
  include ConsulNativeTestHelper

  def setup
    super
    _agent, _client, @db, @web = agent_db_web
    @listener = owned(@db.listen("127.0.0.1:0"))
    server = Thread.new { @listener.accept(timeout: 10) }
    @conn = owned(@web.dial_address(@listener.address_string, expected: "db", timeout: 5))
    @peer = owned(server.value)
  end

  # Every public method that takes a timeout, called with `t`.
  def calls
    {
      "Service#wait_ready" => ->(t) { @web.wait_ready(timeout: t) },
      "Service#dial" => ->(t) { @web.dial("db", timeout: t) },
      "Service#dial_address" => ->(t) { @web.dial_address(@listener.address_string, expected: "db", timeout: t) },
      "Listener#accept" => ->(t) { @listener.accept(timeout: t) },
      "Conn#readpartial" => ->(t) { @conn.readpartial(1, timeout: t) },
      "Conn#read" => ->(t) { @conn.read(1, timeout: t) },
      "Conn#write" => ->(t) { @conn.write("x", timeout: t) },
      "Conn#close_write" => ->(t) { @conn.close_write(timeout: t) },
    }
  end

  def test_a_negative_timeout_raises_argument_error_everywhere_before_anything_happens
    calls.each do |name, call|
      [-1, -0.001, Float::NAN].each do |bad|
        err = assert_raises(ArgumentError, "#{name}(timeout: #{bad})") { call.call(bad) }
        assert_includes err.message, "timeout", name
      end
      assert_raises(TypeError, name) { call.call("5") }
    end
    # Nothing was written or closed by the rejected calls: the connection still carries data both ways.
    @conn.write("ok")
    assert_equal "ok", @peer.read(2, timeout: 5)
    @peer.write("back")
    assert_equal "back", @conn.read(4, timeout: 5)
    # Empty writes and zero-length reads check their timeout too.
    assert_raises(ArgumentError) { @conn.write("", timeout: -1) }
    assert_raises(ArgumentError) { @conn.readpartial(0, timeout: -1) }
  end

  def test_zero_does_not_wait
    never_ready = owned(client_for("127.0.0.1:#{free_port}").service("web"))
    {
      "Listener#accept" => [ConsulNative::TimeoutError, -> { @listener.accept(timeout: 0) }],
      "Conn#readpartial" => [ConsulNative::TimeoutError, -> { @conn.readpartial(1, timeout: 0) }],
      "Conn#read" => [ConsulNative::TimeoutError, -> { @conn.read(1, timeout: 0) }],
      "Service#wait_ready" => [ConsulNative::NotReady, -> { never_ready.wait_ready(timeout: 0) }],
    }.each do |name, (error, call)|
      started = ConsulNative.now
      assert_raises(error, name) { call.call }
      assert_operator ConsulNative.now - started, :<, 0.2, "#{name} with timeout 0 returned at once"
    end
    # Ready, data waiting, room in the socket: 0 succeeds at once.
    assert_same @web, @web.wait_ready(timeout: 0)
    @peer.write("now")
    got = eventually(5) do
      @conn.readpartial(3, timeout: 0)
    rescue ConsulNative::TimeoutError
      nil
    end
    assert_equal "now", got
    assert_equal 2, @conn.write("hi", timeout: 0)
    assert_equal "hi", @peer.read(2, timeout: 5)
  end

  def test_nil_and_infinity_wait_until_something_happens
    [nil, Float::INFINITY].each do |forever|
      reader = Thread.new { @conn.readpartial(5, timeout: forever) }
      sleep 0.6 # longer than a wait slice: still waiting
      assert reader.alive?, "timeout #{forever.inspect} is still waiting"
      @peer.write("later")
      assert_equal "later", Timeout.timeout(5) { reader.value }
    end
  end
end
