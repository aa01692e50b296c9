# frozen_string_literal: true

require_relative "test_helper"
require "open3"
require "rbconfig"
require "tmpdir"

# DevAgent runs the consulnative-dev-agent binary as a child process: finding it, starting it, its token, its
# controls over HTTP, and that no agent outlives the Ruby process that started it.
class DevAgentTest < Minitest::Test
  include ConsulNativeTestHelper

  LIB_DIR = File.expand_path("../lib", __dir__)
  CHILD = ConsulNative::DevAgent::ChildProcess

  # Whether process `pid` is gone (reaped, or a zombie nobody can talk to any more).
  def gone?(pid)
    stat = File.read("/proc/#{pid}/stat")
    stat[/\) (\w)/, 1] == "Z"
  rescue Errno::ENOENT, Errno::ESRCH
    true
  end

  def fake_agent(dir, script, name = "fake-agent")
    path = File.join(dir, name)
    File.write(path, "#!/bin/sh\n#{script}\n")
    File.chmod(0o755, path)
    path
  end

  def with_env(name, value)
    previous = ENV[name]
    ENV[name] = value
    yield
  ensure
    previous ? ENV[name] = previous : ENV.delete(name)
  end

  def test_the_binary_is_found_by_env_then_beside_the_resolved_library_then_on_path
    Dir.mktmpdir do |dir|
      lib_dir, link_dir, bin_dir = %w[lib links bin].map { |d| File.join(dir, d).tap { |p| Dir.mkdir(p) } }
      File.write(File.join(lib_dir, "libconsulnative.so"), "")
      linked = File.join(link_dir, "libconsulnative.so")
      File.symlink(File.join(lib_dir, "libconsulnative.so"), linked)
      explicit = fake_agent(dir, "exit 0")
      on_path = fake_agent(bin_dir, "exit 0", CHILD::BINARY_NAME)

      assert_equal explicit, CHILD.find_binary(explicit, linked, bin_dir)
      assert_equal on_path, CHILD.find_binary(nil, linked, bin_dir), "nothing beside the library: PATH"
      assert_equal on_path, CHILD.find_binary("", linked, bin_dir), "an empty variable counts as unset"
      beside = fake_agent(lib_dir, "exit 0", CHILD::BINARY_NAME)
      assert_equal beside, CHILD.find_binary(nil, linked, bin_dir), "beside the library the symlink points to"
      assert_equal explicit, CHILD.find_binary(explicit, linked, bin_dir), "the variable still wins"

      err = assert_raises(ConsulNative::DevAgent::NotFound) { CHILD.find_binary(File.join(dir, "nope"), linked, "") }
      assert_includes err.message, "CONSULNATIVE_DEV_AGENT=#{dir}/nope"
      File.delete(beside, on_path)
      err = assert_raises(ConsulNative::DevAgent::NotFound) { CHILD.find_binary(nil, linked, bin_dir) }
      assert_kind_of ConsulNative::Error, err
      [beside, "CONSULNATIVE_DEV_AGENT", bin_dir, "cargo build"].each { |text| assert_includes err.message, text }
    end
    assert File.executable?(CHILD.binary_path), "the suite's own agent binary"
  end

  def test_the_token_goes_through_the_environment_never_the_command_line
    with_env("CONSUL_DEV_AGENT_TOKEN", "inherited-token") do
      agent = start_agent(token: "s3cret-token")
      argv = File.read("/proc/#{agent.pid}/cmdline").split("\0")
      refute(argv.any? { |a| a.include?("s3cret") }, argv.inspect)
      assert_includes argv, "--exit-on-stdin-eof"
      environ = File.read("/proc/#{agent.pid}/environ").split("\0")
      assert_includes environ, "CONSUL_DEV_AGENT_TOKEN=s3cret-token"
      # Without a token, an inherited one is not passed on: the agent is open.
      open_agent = start_agent
      inherited = File.read("/proc/#{open_agent.pid}/environ").split("\0").grep(/\ACONSUL_DEV_AGENT_TOKEN=/)
      assert_empty inherited
      open_agent.deny("web", "db")
    end
  end

  def test_stop_ends_and_reaps_the_process_and_close_makes_every_call_raise
    agent = ConsulNative::DevAgent.new
    pid = agent.pid
    domain = agent.trust_domain
    agent.stop
    refute File.exist?("/proc/#{pid}"), "stopped and reaped"
    assert_equal domain, agent.trust_domain, "still answers once stopped"
    assert agent.address
    err = assert_raises(ConsulNative::AgentUnreachable) { agent.rotate_ca }
    assert_includes err.message, "stopped"
    assert_match(/stopped/, agent.inspect)
    agent.close
    agent.close
    assert agent.closed?
    %i[address trust_domain rotate_ca clear_faults stop].each do |m|
      assert_raises(ConsulNative::ClosedError, m) { agent.public_send(m) }
    end
  end

  def test_an_agent_that_ignores_stdin_eof_is_terminated_then_killed_within_bounded_waits
    previous = CHILD.grace
    CHILD.grace = 0.3
    Dir.mktmpdir do |dir|
      # Ready at once on a port nobody answers, ignoring EOF and SIGTERM: only SIGKILL ends it.
      binary = fake_agent(dir, "trap '' TERM\necho 'consulnative-dev-agent listening on http://127.0.0.1:1'\n" \
                               "while :; do sleep 0.05; done")
      with_env("CONSULNATIVE_DEV_AGENT", binary) do
        started = ConsulNative.now
        err = assert_raises(ConsulNative::AgentUnreachable) { ConsulNative::DevAgent.new }
        assert_operator ConsulNative.now - started, :<, 3
        pid = Integer(err.message[/pid (\d+)/, 1])
        assert gone?(pid), "killed and reaped"
      end
      garbage = fake_agent(dir, "echo 'hello'")
      with_env("CONSULNATIVE_DEV_AGENT", garbage) do
        err = assert_raises(ConsulNative::IoError) { ConsulNative::DevAgent.new }
        assert_includes err.message, "hello"
      end
    end
  ensure
    CHILD.grace = previous
  end

  def test_bad_arguments_and_a_taken_port_raise_with_the_agents_message
    err = assert_raises(ConsulNative::InvalidArgument) { ConsulNative::DevAgent.new(address: "localhost:1") }
    assert_includes err.message, "invalid --http-addr"
    refute_includes err.message, "Usage:"
    taken = start_agent
    err = assert_raises(ConsulNative::IoError) { ConsulNative::DevAgent.new(address: taken.address) }
    assert_includes err.message, "in use"
    assert_raises(ArgumentError) { ConsulNative::DevAgent.new(leaf_ttl: 0.5) }
    assert_raises(ArgumentError) { ConsulNative::DevAgent.new(leaf_ttl: "1s") }
  end

  def test_leaf_ttl_and_default_deny_reach_the_agent
    agent = start_agent(leaf_ttl: 2, default_allow: false)
    client = client_for(agent)
    db = ready_service(client, "db")
    web = ready_service(client, "web")
    assert_operator db.status[:leaf_valid_before] - Time.now.to_i, :<=, 3
    listener = owned(db.listen("127.0.0.1:0"))
    refusals = listener.record_refusals
    begin
      web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.read(1, timeout: 2) }
    rescue ConsulNative::Error
      nil
    end
    assert eventually(5) { refusals.size == 1 }
    assert_equal ConsulNative::AuthorizationDenied, refusals.first.error_class
    agent.allow("web", "db")
    t = Thread.new { listener.accept(timeout: 10) { |c| c.read(2) } }
    web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.write("ok") }
    assert_equal "ok", t.value
  end

  def test_every_fault_kind_is_accepted_and_a_malformed_answer_shows_in_the_status
    agent, _client, _db, web = agent_db_web
    agent.set_fault(:all, :delay, 50).set_fault(:leaf, :backwards_index).clear_faults
    agent.set_fault(:roots, :malformed)
    agent.rotate_ca
    assert eventually(10) { web.status[:last_error] }, web.status.inspect
    agent.clear_faults
    assert eventually(10) { web.status[:last_error].nil? }, web.status.inspect
    assert_raises(ConsulNative::InvalidArgument) { agent.set_fault(:all, :explode) }
    err = assert_raises(ConsulNative::InvalidArgument) { agent.set_fault(:all, :status, 5000) }
    assert_includes err.message, "HTTP 400"
  end

  def start_and_forget_an_agent
    ConsulNative::DevAgent.new.pid
  end

  def test_a_garbage_collected_agent_exits
    pid = start_and_forget_an_agent
    refute gone?(pid)
    assert eventually(10, 0.1) {
      GC.start(full_mark: true, immediate_sweep: true)
      gone?(pid)
    }, "the finalizer closed its stdin"
  end

  def test_no_agent_outlives_the_ruby_process_however_it_ends
    script = <<~RUBY
      require "consulnative"
      agent = ConsulNative::DevAgent.new
      ConsulNative::DevAgent.new # never referenced
      puts agent.pid
      $stdout.flush
      case ARGV[0]
      when "exit" then exit(0)
      when "exit!" then exit!(0)
      when "raise" then raise "boom"
      else Process.kill(:KILL, Process.pid)
      end
    RUBY
    %w[exit exit! raise kill].each do |how|
      out, _err, _status = Open3.capture3(RbConfig.ruby, "-I#{LIB_DIR}", "-e", script, how)
      pid = Integer(out.lines.first, exception: false)
      refute_nil pid, "#{how}: #{out}"
      assert eventually(5, 0.05) { gone?(pid) }, "#{how}: the agent #{pid} is still running"
    end
  end

  def test_ctrl_c_reaches_the_ruby_program_and_not_its_agent
    script = <<~RUBY
      require "consulnative"
      agent = ConsulNative::DevAgent.new
      done = Queue.new
      trap("INT") do
        Thread.new do
          done << agent.rotate_ca.trust_domain
        rescue StandardError => e
          done << e.class.name
        end
      end
      puts agent.pid
      $stdout.flush
      puts "still up: \#{done.pop}"
    RUBY
    Open3.popen3(RbConfig.ruby, "-I#{LIB_DIR}", "-e", script, pgroup: true) do |stdin, stdout, stderr, wait|
      stdin.close
      pid = Integer(Timeout.timeout(10) { stdout.gets })
      Process.kill(:INT, -wait.pid) # the whole group, as a terminal does
      assert_match(/still up: \S+\.consul/, Timeout.timeout(10) { stdout.read })
      assert wait.value.success?, stderr.read
      assert eventually(5, 0.05) { gone?(pid) }
    ensure
      Process.kill(:KILL, wait.pid) if wait.alive?
    end
  end

  def test_the_binding_prints_no_ruby_warnings
    script = <<~RUBY
      require "consulnative"
      ConsulNative::DevAgent.open(token: "t") do |agent|
        agent.deny("a", "b").delete_intention("a", "b").rotate_ca.set_fault(:all, :delay, 1).clear_faults
        agent.issue_leaf("web")
        agent.client(blocking_wait_ms: 2000) { |c| c.service("web") { |s| s.wait_ready(timeout: 10) } }
      end
    RUBY
    _out, err, status = Open3.capture3(RbConfig.ruby, "-w", "-I#{LIB_DIR}", "-e", script)
    assert status.success?, err
    assert_empty err
  end
end
