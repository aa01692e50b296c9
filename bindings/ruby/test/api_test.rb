# frozen_string_literal: true

require_relative "test_helper"

class ApiTest < Minitest::Test
  include ConsulNativeTestHelper

  ROOT = File.expand_path("../../..", __dir__)
  HEADER = File.join(ROOT, "include", "consulnative.h")
  LIB_SOURCES = Dir[File.expand_path("../lib/**/*.rb", __dir__)]

  def test_every_function_in_the_header_is_attached_and_called_by_the_binding
    declared = File.read(HEADER).scan(/^\w[\w\s\*]*?\b(consulnative_\w+)\(/).flatten.uniq
    # The in-process dev agent is leaving the library (DevAgent runs the consulnative-dev-agent binary): its
    # functions must not be attached, or loading fails against a library without them.
    dev_agent, declared = declared.partition { |f| f.start_with?("consulnative_dev_agent_") }
    attached = dev_agent.select { |f| ConsulNative::Native.respond_to?(f) }
    assert_empty attached, "the binding must not depend on the in-process dev agent"
    assert_operator declared.size, :>=, 30
    missing = declared.reject { |f| ConsulNative::Native.respond_to?(f) }
    assert_empty missing, "not attached"
    # Every use outside the attach_function declarations counts (calls, and names passed to a helper).
    code = LIB_SOURCES.map { |f| File.readlines(f).grep_v(/attach_function|^\s*#|^\s+:uint32, B$/).join }.join
    unused = declared.reject { |f| code.match?(/\b#{f}\b/) }
    assert_empty unused, "attached but never called by the binding"
  end

  def test_version_and_result_names_come_from_the_library
    assert_match(/\A\d+\.\d+\.\d+/, ConsulNative.library_version)
    assert_equal "authorization denied", ConsulNative.result_name(12)
    assert_equal "unknown result", ConsulNative.result_name(9999)
    assert File.file?(ConsulNative.library_path)
  end

  def test_every_result_code_has_an_error_class_under_one_namespace
    (1..20).each do |code|
      klass = ConsulNative::Error.class_for(code)
      assert_operator klass, :<, ConsulNative::Error, "code #{code}"
      assert_equal code, klass.new("m").code
      refute_equal "unknown result", klass.new("m").code_name
    end
    assert_equal ConsulNative::AuthorizationDenied, ConsulNative::Error.class_for(12)
    assert_equal ConsulNative::TimeoutError, ConsulNative::Error.class_for(8)
    assert_equal ConsulNative::Error, ConsulNative::Error.class_for(999)
    assert_operator ConsulNative::Error, :<, StandardError
  end

  def test_errors_carry_the_librarys_message_from_the_failing_thread
    err = assert_raises(ConsulNative::InvalidArgument) { ConsulNative::Client.new(no_such_key: "x") }
    assert_includes err.message, "no_such_key"
    assert_includes ConsulNative.last_error, "no_such_key"
    # Another thread has its own last error.
    other = Thread.new do
      ConsulNative::Client.new(request_timeout_ms: "soon")
    rescue ConsulNative::Error => e
      [e.class, e.message, ConsulNative.last_error]
    end.value
    assert_equal ConsulNative::InvalidArgument, other[0]
    assert_equal other[1].sub(/\Aconfig key request_timeout_ms: /, ""), other[2]
    assert_includes ConsulNative.last_error, "no_such_key", "this thread's message is unchanged"

    agent = start_agent
    err = assert_raises(ConsulNative::InvalidArgument) { agent.set_fault("nowhere", "status", 500) }
    refute_empty err.message
    svc = owned(client_for(agent).service("x"))
    assert_raises(ConsulNative::InvalidArgument) { svc.listen("not an address") }
    assert_raises(ArgumentError) { svc.pem(:nope) }
  end

  def test_client_takes_its_address_from_the_environment_and_keywords_win
    agent = start_agent
    previous = ENV["CONSUL_HTTP_ADDR"]
    ENV["CONSUL_HTTP_ADDR"] = agent.address
    begin
      ConsulNative::Client.open(**FAST) do |client|
        client.service("web") { |svc| assert svc.wait_ready(timeout: 10).ready? }
      end
      bad = "127.0.0.1:#{free_port}"
      ConsulNative::Client.open(address: bad, **FAST) do |client|
        client.service("web") do |svc|
          err = assert_raises(ConsulNative::NotReady) { svc.wait_ready(timeout: 0.5) }
          assert_includes err.message, bad
        end
      end
    ensure
      previous ? ENV["CONSUL_HTTP_ADDR"] = previous : ENV.delete("CONSUL_HTTP_ADDR")
    end
  end

  def test_logger_receives_library_lines_and_can_be_reset
    lines = Queue.new
    ConsulNative.set_logger(level: :debug) { |level, message| lines << [level, message] }
    begin
      agent = start_agent
      client = client_for(agent, token: "never-logged-token")
      ready_service(client, "web")
      level, message = Timeout.timeout(5) { lines.pop }
      assert_includes %i[error warn info debug], level
      assert_kind_of String, message
      all = [message]
      all << lines.pop until lines.empty?
      refute(all.any? { |m| m.include?("never-logged-token") }, "tokens never reach the log")
    ensure
      ConsulNative.set_logger
    end
    assert_raises(ArgumentError) { ConsulNative.set_logger(level: :loud) }
  end

  def test_blocks_close_what_they_open
    agent = start_agent
    kept = {}
    ConsulNative::DevAgent.open do |a|
      kept[:agent] = a
      a.client(**FAST) do |client|
        kept[:client] = client
        client.service("db") do |db|
          kept[:db] = db
          db.wait_ready(timeout: 10)
          db.listen("127.0.0.1:0") { |l| kept[:listener] = l }
        end
      end
    end
    kept.each { |name, handle| assert handle.closed?, "#{name} closed by its block" }
    assert agent.address
  end
end
