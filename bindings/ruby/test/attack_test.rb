# frozen_string_literal: true

require_relative "test_helper"
require "rbconfig"

# Attack: a flood of junk connections (from another process) while the refusal block is busy, as in issue 12.
# Legitimate clients must keep being admitted, and the process must not grow: the block runs on the listener's
# own thread behind a bounded queue, and what it cannot keep up with is counted. Generous bounds, assertions on
# counts; loopback only, every loop bounded.
class AttackTest < Minitest::Test
  include ConsulNativeTestHelper

  FLOODER = <<~RUBY
    host, port, seconds = ARGV[0], Integer(ARGV[1]), Float(ARGV[2])
    finish = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    n = 0
    while Process.clock_gettime(Process::CLOCK_MONOTONIC) < finish
      begin
        s = TCPSocket.new(host, port)
        s.write("GET / HTTP/1.0\\r\\n\\r\\n")
        s.close
        n += 1
      rescue SystemCallError
        sleep 0.001
      end
    end
    puts n
  RUBY

  def proc_status
    status = File.read("/proc/self/status")
    [status[/^VmRSS:\s+(\d+)/, 1].to_i, status[/^Threads:\s+(\d+)/, 1].to_i]
  end

  def busy_for(seconds)
    finish = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    x = 0
    x += 1 while Process.clock_gettime(Process::CLOCK_MONOTONIC) < finish
    x
  end

  def probe(web, address)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    web.dial_address(address, expected: "db", timeout: 5) do |conn|
      conn.write("ping")
      got = conn.read(4)
      [got == "ping", Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, nil]
    end
  rescue ConsulNative::Error => e
    [false, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, "#{e.class}: #{e.message[0, 120]}"]
  end

  def test_junk_flood_with_a_busy_refusal_block_leaves_legitimate_clients_admitted
    agent = start_agent
    client = client_for(agent, refusal_queue: 2)
    db = ready_service(client, "db")
    web = ready_service(client, "web")
    listener = owned(db.listen("127.0.0.1:0"))
    seen = []
    listener.on_refused do |refusal|
      seen << refusal.dropped
      busy_for(0.5) # a Ruby block holding the GVL, as a busy application thread would
    end
    echo_server(listener)
    assert probe(web, listener.address_string)[0], "warm-up dial"
    rss0, threads0 = proc_status
    host, port = listener.address
    out_r, out_w = IO.pipe
    pid = Process.spawn(RbConfig.ruby, "-rsocket", "-e", FLOODER, host, port.to_s, "4", out: out_w)
    out_w.close
    probes = []
    peak_rss = rss0
    peak_threads = threads0
    finish = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 7
    while Process.clock_gettime(Process::CLOCK_MONOTONIC) < finish
      probes << probe(web, listener.address_string)
      rss, threads = proc_status
      peak_rss = [peak_rss, rss].max
      peak_threads = [peak_threads, threads].max
      sleep 0.2
    end
    Process.wait(pid)
    junk = out_r.read.to_i
    out_r.close
    stats = listener.stats
    summary = { junk: junk, probes: probes.size, failed: probes.reject(&:first).map(&:last).uniq.first(3),
                max_s: probes.map { |p| p[1] }.max, rss_kib: [rss0, peak_rss], threads: [threads0, peak_threads],
                seen: seen.size, stats: stats }.inspect

    assert_operator junk, :>=, 100, summary
    assert probes.all?(&:first), summary
    assert_operator probes.map { |p| p[1] }.max, :<, 5, summary
    assert_operator peak_threads, :<=, threads0 + 12, summary
    assert_operator peak_rss, :<=, rss0 + (64 * 1024), summary
    assert_operator seen.size, :<=, 20, summary
    assert_operator stats[:refused], :>=, junk * 0.9, summary
    assert_operator stats[:refusals_dropped], :>=, stats[:refused] - seen.size - 2, summary
    assert eventually(5) { seen.any?(&:positive?) }, "a \"N refusals dropped\" refusal reaches the block: #{summary}"
    assert_equal 2, stats[:limits][:refusal_queue]
    assert_equal probes.size + 1, stats[:accepted], summary
  end
end
