# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"

class LifecycleTest < Minitest::Test
  include ConsulNativeTestHelper

  LIB_DIR = File.expand_path("../lib", __dir__)

  # Builds the whole chain (agent, client, services, listener, both ends of a connection, callbacks) and returns
  # the handles without closing any.
  def build_chain
    agent = ConsulNative::DevAgent.new
    client = ConsulNative::Client.new(address: agent.address, **FAST)
    db = client.service("db").wait_ready(timeout: 10)
    web = client.service("web").wait_ready(timeout: 10)
    listener = db.listen("127.0.0.1:0")
    add_callbacks(db, web, listener)
    server = Thread.new { listener.accept(timeout: 10) }
    conn = web.dial_address(listener.address_string, expected: "db", timeout: 5)
    conn.write("x")
    accepted = server.value
    [agent, client, db, web, listener, conn, accepted]
  end

  # Blocks capture the local variables around them: made here, they do not hold the handles.
  def add_callbacks(db, web, listener)
    db.on_rotate(&CALLBACK_A)
    web.on_event(&CALLBACK_B)
    listener.on_refused(&CALLBACK_A)
    listener.peer_check(&CALLBACK_B)
  end

  CALLBACK_A = proc { |_| nil }
  CALLBACK_B = proc { |_a, _b| true }

  def collect
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    nil
  end

  def test_garbage_collection_of_handles_in_any_order_never_crashes
    [[0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [1, 0, 3, 5, 2, 6, 4], [4, 2, 0, 6, 1, 3, 5]].each do |order|
      handles = build_chain
      order.each do |i|
        handles[i] = nil
        collect
      end
    end
    # Everything unreferenced at once, too.
    3.times { build_chain }
    collect
    assert eventually(5) { collect; ConsulNative::Callbacks.size.zero? },
           "drop callbacks released every Ruby callback object (#{ConsulNative::Callbacks.size} left)"
  end

  def test_explicit_close_in_any_order_and_double_close_are_safe
    handles = build_chain
    handles.shuffle(random: Random.new(7)).each(&:close)
    handles.each(&:close)
    assert(handles.all?(&:closed?))
    assert_raises(ConsulNative::ClosedError) { handles[5].write("x") }
    assert_raises(ConsulNative::ClosedError) { handles[2].status }
  end

  def test_closing_a_service_keeps_its_listener_and_connections_working
    _agent, client, _db, web = agent_db_web
    db = client.service("db").wait_ready(timeout: 10)
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    db.close
    client.close
    reply = web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.write("still") && c.read(5) }
    assert_equal "still", reply
  end

  SCENARIOS = {
    "open handles and callbacks, nothing closed" => <<~RUBY,
      agent = ConsulNative::DevAgent.new
      client = ConsulNative::Client.new(address: agent.address, blocking_wait_ms: 2000, retry_max_ms: 300)
      db = client.service("db").wait_ready(timeout: 10)
      web = client.service("web").wait_ready(timeout: 10)
      db.on_rotate { |_| }
      listener = db.listen("127.0.0.1:0")
      listener.on_refused { |_| }
      listener.peer_check { |_u, _s| true }
      t = Thread.new { listener.accept(timeout: 10) }
      conn = web.dial_address(listener.address_string, expected: "db", timeout: 5)
      conn.write("x")
      server = t.value
      $keep = [agent, client, db, web, listener, conn, server]
    RUBY
    "a thread blocked in accept forever, a reader blocked forever, a logger set" => <<~RUBY,
      ConsulNative.set_logger(level: :debug) { |_l, _m| }
      agent = ConsulNative::DevAgent.new
      client = ConsulNative::Client.new(address: agent.address, blocking_wait_ms: 2000, retry_max_ms: 300)
      db = client.service("db").wait_ready(timeout: 10)
      web = client.service("web").wait_ready(timeout: 10)
      listener = db.listen("127.0.0.1:0")
      Thread.new { listener.accept }
      l2 = db.listen("127.0.0.1:0")
      t = Thread.new { l2.accept(timeout: 10) }
      conn = web.dial_address(l2.address_string, expected: "db", timeout: 5)
      Thread.new { t.value.read(1) }
      Thread.new { conn.read(1) }
      sleep 0.3
    RUBY
    "agent stopped under a watching service, then exit mid-rotation" => <<~RUBY,
      agent = ConsulNative::DevAgent.new
      client = ConsulNative::Client.new(address: agent.address, blocking_wait_ms: 2000, retry_max_ms: 300)
      web = client.service("web").wait_ready(timeout: 10)
      web.on_event { |_e, _s| sleep 0.05 }
      agent.rotate_ca
      agent2 = ConsulNative::DevAgent.new
      agent.stop
      sleep 0.2
    RUBY
    "handed-off socket and handles left to the garbage collector" => <<~RUBY,
      agent = ConsulNative::DevAgent.new
      client = ConsulNative::Client.new(address: agent.address, blocking_wait_ms: 2000, retry_max_ms: 300)
      db = client.service("db").wait_ready(timeout: 10)
      web = client.service("web").wait_ready(timeout: 10)
      listener = db.listen("127.0.0.1:0")
      t = Thread.new { listener.accept(timeout: 10) }
      io = web.dial_address(listener.address_string, expected: "db", timeout: 5).to_io
      io.write("x")
      t.value
      agent = client = db = web = listener = t = nil
      GC.start
      exit!(0) if ARGV.include?("hard")
    RUBY
  }.freeze

  def test_process_exit_with_open_handles_never_crashes_or_hangs
    SCENARIOS.each do |name, body|
      script = "require 'consulnative'\n#{body}\nputs 'reached the end'\n"
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      command = [RbConfig.ruby, "-w", "-I#{LIB_DIR}", "-e", script]
      out, err, status = Open3.popen3(*command) do |stdin, stdout, stderr, wait|
        stdin.close
        unless wait.join(20)
          Process.kill("KILL", wait.pid)
          flunk "#{name}: the process hung at exit"
        end
        [stdout.read, stderr.read, wait.value]
      end
      elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
      assert status.success?, "#{name}: exit status #{status.inspect}\n#{err}"
      assert_includes out, "reached the end", "#{name}: #{err}"
      refute_match(/segmentation|SIGSEGV|SIGABRT|panicked|\[BUG\]/i, err, name)
      refute_match(/warning:/, err, "#{name}: ruby -w is quiet")
      assert_operator elapsed, :<, 15, "#{name}: exit took #{elapsed.round(1)} s"
    end
  end
end
