# frozen_string_literal: true

# The junk-connection flood of issue 12 for the Ruby binding, as a measuring script (attack_test.rb runs a short,
# asserting version): a listener whose refusal block is busy (it holds the GVL for BUSY seconds per refusal) is
# flooded with junk TCP connections from another process, while a legitimate client dials it every 0.2 s.
# Prints JSON: junk connections, legitimate dials admitted during and after the flood, peak RSS and threads.
#
#   ruby -Ibindings/ruby/lib bindings/ruby/test/flood_scenario.rb [flood_s] [observe_s] [busy_s] [flooders]
#
# Loopback only; every loop is bounded by the flood and observation times.

require "consulnative"
require "json"
require "rbconfig"

flood_s, observe_s, busy_s, flooders = (ARGV[0] || 10).to_f, (ARGV[1] || 10).to_f, (ARGV[2] || 0.5).to_f,
                                       (ARGV[3] || 2).to_i

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

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)

def proc_status
  status = File.read("/proc/self/status")
  [status[/^VmRSS:\s+(\d+)/, 1].to_i, status[/^Threads:\s+(\d+)/, 1].to_i]
end

def probe(web, address)
  started = now
  web.dial_address(address, expected: "db", timeout: 5) do |conn|
    conn.write("ping")
    [conn.read(4) == "ping", now - started, nil]
  end
rescue ConsulNative::Error => e
  [false, now - started, "#{e.class.name.split('::').last}: #{e.message[0, 100]}"]
end

def part(probes)
  ok = probes.select(&:first).map { |p| p[1] }
  { dials: probes.size, admitted: ok.size, max_admit_ms: ok.empty? ? nil : (ok.max * 1000).round,
    errors: probes.reject(&:first).map { |p| p[2] }.uniq.first(3) }
end

ConsulNative::DevAgent.open do |agent|
  agent.client(blocking_wait_ms: 2000, retry_max_ms: 300) do |client|
    db = client.service("db").wait_ready(timeout: 10)
    web = client.service("web").wait_ready(timeout: 10)
    listener = db.listen("127.0.0.1:0")
    seen = 0
    listener.on_refused do |_refusal|
      seen += 1
      finish = now + busy_s
      nil while now < finish # a busy Ruby block: holds the GVL
    end
    Thread.new do
      listener.each_connection_in_thread do |conn|
        data = conn.readpartial(64, timeout: 5)
        conn.write(data)
      rescue ConsulNative::Error, EOFError
        nil
      end
    end
    probe(web, listener.address_string)
    rss0, threads0 = proc_status
    peak = [rss0, threads0]
    host, port = listener.address
    pipes = Array.new(flooders) do
      r, w = IO.pipe
      pid = Process.spawn(RbConfig.ruby, "-rsocket", "-e", FLOODER, host, port.to_s, flood_s.to_s, out: w)
      w.close
      [pid, r]
    end
    start = now
    probes = []
    while now < start + flood_s + observe_s
      t = now
      ok, took, error = probe(web, listener.address_string)
      probes << [ok, took, error, t - start]
      rss, threads = proc_status
      peak = [[peak[0], rss].max, [peak[1], threads].max]
      sleep [0, 0.2 - (now - t)].max
    end
    junk = pipes.sum do |pid, r|
      Process.wait(pid)
      r.read.to_i.tap { r.close }
    end
    during, after = probes.partition { |p| p[3] < flood_s }
    stats = listener.respond_to?(:stats) ? listener.stats : {}
    puts JSON.generate(junk_connections: junk, junk_per_second: (junk / flood_s).round, during_flood: part(during),
                       after_flood: part(after), rss_mib: [rss0 / 1024, peak[0] / 1024], threads: [threads0, peak[1]],
                       refusal_callbacks: seen, listener_stats: stats)
    $stdout.flush
    exit!(0) # do not wait for refusal blocks still queued on library threads (the "before" library has hundreds)
  end
end
