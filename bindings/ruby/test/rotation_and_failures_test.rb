# frozen_string_literal: true

require_relative "test_helper"

class RotationAndFailuresTest < Minitest::Test
  include ConsulNativeTestHelper

  def test_ca_rotation_keeps_an_open_connection_and_on_rotate_fires_with_the_new_leaf
    agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    rotated = Queue.new
    events = Queue.new
    db.on_rotate { |svc| rotated << svc.serial }
    extra = db.on_event { |event, _svc| events << event }

    open = owned(web.dial_address(listener.address_string, expected: "db", timeout: 5))
    open.write("before")
    assert_equal "before", open.read(6, timeout: 5)
    old_serial = db.serial
    old_root = db.status[:active_root_id]
    sleep 0.3
    assert rotated.empty?, "on_rotate does not report the first leaf as a rotation"

    agent.rotate_ca
    new_serial = Timeout.timeout(10) { rotated.pop }
    refute_equal old_serial, new_serial
    assert eventually(10) { db.status[:roots] == 2 }
    refute_equal old_root, db.status[:active_root_id]
    seen = []
    seen << events.pop until seen.include?(:leaf_rotated) && seen.include?(:roots_changed)
    db.remove_callback(extra)

    open.write("after")
    assert_equal "after", open.read(5, timeout: 5), "the open connection survives the rotation"

    web.dial_address(listener.address_string, expected: "db", timeout: 5) do |fresh|
      assert_equal db.serial, fresh.peer.serial, "a new handshake presents the new leaf"
      fresh.write("new")
      assert_equal "new", fresh.read(3, timeout: 5)
    end
    pems = %i[leaf_chain leaf_key roots].map { |k| db.pem(k) }
    assert_includes pems[0], "BEGIN CERTIFICATE"
    assert_includes pems[1], "PRIVATE KEY"
    assert_equal 2, pems[2].scan("BEGIN CERTIFICATE").size
  end

  def test_agent_down_at_startup_is_not_ready_with_the_reason_then_ready_when_it_comes_up
    address = "127.0.0.1:#{free_port}"
    client = client_for(address)
    web = owned(client.service("web"))
    err = assert_raises(ConsulNative::NotReady) { web.wait_ready(timeout: 0.7) }
    assert_equal 7, err.code
    assert_includes err.message, "unreachable"
    assert_includes err.message, address
    refute web.ready?

    watch_errors = Queue.new
    web.on_event { |event, _| watch_errors << event if event == :watch_error }
    start_agent(address: address)
    web.wait_ready(timeout: 10)
    assert web.ready?
    assert_nil web.status[:last_error]
  end

  def test_agent_stopped_then_restarted_keeps_the_last_good_certificates_and_recovers
    address = "127.0.0.1:#{free_port}"
    agent = ConsulNative::DevAgent.new(address: address)
    client = client_for(address)
    web = ready_service(client, "web")
    db = ready_service(client, "db")
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    errors = Queue.new
    web.on_event { |event, _| errors << event if event == :watch_error }

    agent.stop
    agent.stop # idempotent
    agent.close
    assert_equal :watch_error, Timeout.timeout(10) { errors.pop }
    assert eventually(10) { web.status[:last_error].to_s.include?("unreachable") }, web.status.inspect
    assert web.ready?, "last good certificates kept while the agent is away"
    assert_raises(ConsulNative::ClosedError) { agent.address }

    start_agent(address: address)
    # A restarted dev agent has a new CA: the services follow it.
    assert eventually(15) { web.status[:last_error].nil? && web.ready? }, web.status.inspect
    assert eventually(15) { web.status[:trust_domain] == db.status[:trust_domain] }
    answer = eventually(15) do
      web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.write("up") && c.read(2) }
    rescue ConsulNative::Error
      nil
    end
    assert_equal "up", answer
  end

  def test_agent_errors_show_in_status_and_the_last_good_certificates_stay_in_force
    agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    agent.set_fault("leaf", "status", 500, "internal failure")
    agent.fault(:roots, :status, 500, "internal failure")
    agent.rotate_ca # wakes the blocked queries so the next ones hit the fault
    assert eventually(10) { web.status[:last_error].to_s.include?("500") }, web.status.inspect
    reply = web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.write("ok") && c.read(2) }
    assert_equal "ok", reply
    agent.clear_faults
    assert eventually(10) { web.status[:last_error].nil? && web.ready? }
  end

  def test_failed_authorize_call_refuses_with_authorization_failed
    agent = start_agent
    client = client_for(agent, authorize_timeout_ms: 500)
    db = ready_service(client, "db")
    web = ready_service(client, "web")
    listener = owned(db.listen("127.0.0.1:0"))
    refusals = listener.record_refusals
    agent.set_fault("authorize", "status", 500, "rpc error: no cluster leader")
    begin
      web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.read(1, timeout: 3) }
    rescue ConsulNative::Error
      nil
    end
    assert eventually(5) { refusals.size == 1 }
    assert_equal ConsulNative::AuthorizationFailed, refusals.first.error_class
    assert_includes refusals.first.message, "no cluster leader"
  end

  def test_acl_token_missing_is_a_permission_error_and_the_right_token_works
    agent = start_agent(token: "s3cret-token")
    err = assert_raises(ConsulNative::NotReady) { owned(client_for(agent).service("web")).wait_ready(timeout: 1.5) }
    assert_includes err.message, "403"
    refute_includes err.message, "s3cret-token"
    assert_raises(ConsulNative::AgentPermissionDenied) { client_for(agent).register("web", port: 1) }
    good = owned(agent.client(**FAST))
    web = ready_service(good, "web")
    refute_includes web.status.to_s, "s3cret-token"
  end
end
