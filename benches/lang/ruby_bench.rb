# frozen_string_literal: true

# Ruby: the consulnative gem against Ruby's own openssl library, same certificates, same work.
#
#   cargo build --release
#   ruby benches/lang/ruby_bench.rb [--smoke] [--json OUT] [--runs N] [--seconds S] [--explain]
#
# Metrics (rates, higher is better):
# * handshakes/s: connect + mutual-TLS handshake (+ authorize, library only) + a 1-byte echo + close, one at a
#   time. Library: svc.dial_address(addr, expected: "db") to a "db" listener whose accept loop runs in a Thread of
#   this process. Baseline: OpenSSL::SSL::SSLSocket client to an SSLSocket server Thread of this process with the
#   same dev-agent leaves and roots, VERIFY_PEER (+FAIL_IF_NO_PEER_CERT on the server), TLS 1.3 only. The baseline
#   checks chains against the roots but neither checks SPIFFE identities nor asks the agent to authorize.
# * echo round trips/s: one established connection, 64 bytes written and read back. Library Conn#write/read against
#   a library echo Thread; the library connection to_io-ed on both ends (plain Sockets, the library pumping TLS on
#   its runtime); SSLSocket against an SSLSocket echo Thread.
# Runs alternate library, baseline, ... so machine noise hits both; figures are medians with min..max.
# --smoke only checks that figures come out (a few seconds), never that they beat anything.

require "json"
require "openssl"
require "optparse"
require "socket"
require "tmpdir"

ROOT = File.expand_path("../..", __dir__)
ENV["CONSULNATIVE_LIB"] ||= File.join(ROOT, "target", "release", "libconsulnative.so")
$LOAD_PATH.unshift(File.join(ROOT, "bindings", "ruby", "lib"))

module LangBench
  MESSAGE = (0...64).map(&:chr).join.b.freeze
  MAX_OPS = 2_000_000

  module_function

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Voluntary + involuntary context switches of every thread of this process (Linux /proc).
  def ctx_switches
    Dir.glob("/proc/self/task/*/status").sum do |path|
      File.foreach(path).sum { |l| l.start_with?("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches") ? l.split[1].to_i : 0 }
    rescue SystemCallError
      0
    end
  end

  # Calls the block until `seconds` passed (or MAX_OPS): [ops per second, context switches per op].
  def timed(seconds)
    n = 0
    cs0 = ctx_switches
    start = now
    deadline = start + seconds
    while n < MAX_OPS
      yield
      n += 1
      break if (n & 7).zero? && now >= deadline
    end
    elapsed = now - start
    [n / elapsed, (ctx_switches - cs0).to_f / n]
  end

  def nodelay(sock)
    sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
    sock
  end

  def echo_thread(name)
    Thread.new do
      Thread.current.name = name
      Thread.current.report_on_exception = false
      yield
    rescue EOFError, IOError, SystemCallError, ConsulNative::Error, OpenSSL::SSL::SSLError
      nil
    end
  end

  # A dev agent, services web and db, and OpenSSL contexts built from their dev-agent certificates. The agent is
  # the consulnative-dev-agent binary in its own process (as a real Consul agent is): its work, e.g. answering
  # the authorize call of each library handshake, is not in this process's context switch counts.
  class Setup
    attr_reader :agent, :client, :db, :web, :server_ctx, :client_ctx

    def initialize
      @agent = ConsulNative::DevAgent.new
      @agent.allow("web", "db")
      @client = @agent.client
      @db = @client.service("db")
      @web = @client.service("web")
      @db.wait_ready(timeout: 20)
      @web.wait_ready(timeout: 20)
      @tmp = Dir.mktmpdir("consulnative-bench-")
      @server_ctx = context(@db, server: true)
      @client_ctx = context(@web, server: false)
    end

    # PEM text goes through files, as a Ruby program configured from disk would load it.
    def context(svc, server:)
      paths = { leaf: :leaf_chain, key: :leaf_key, roots: :roots }.to_h do |name, kind|
        path = File.join(@tmp, "#{server ? "server" : "client"}-#{name}.pem")
        File.write(path, svc.pem(kind))
        [name, path]
      end
      chain = File.read(paths[:leaf]).scan(/-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?/m)
      store = OpenSSL::X509::Store.new
      store.add_file(paths[:roots])
      ctx = OpenSSL::SSL::SSLContext.new
      ctx.min_version = OpenSSL::SSL::TLS1_3_VERSION
      ctx.cert = OpenSSL::X509::Certificate.new(chain.first)
      ctx.extra_chain_cert = chain.drop(1).map { |c| OpenSSL::X509::Certificate.new(c) } if chain.size > 1
      ctx.key = OpenSSL::PKey.read(File.read(paths[:key]))
      ctx.cert_store = store
      ctx.verify_mode = OpenSSL::SSL::VERIFY_PEER | (server ? OpenSSL::SSL::VERIFY_FAIL_IF_NO_PEER_CERT : 0)
      ctx.verify_hostname = false # SPIFFE identities are URI SANs, not host names
      ctx.freeze
      ctx
    end

    def close
      [@web, @db, @client, @agent].each(&:close)
      FileUtils.remove_entry(@tmp) if @tmp
    end
  end

  # -- handshakes ----------------------------------------------------------------------------------------------------

  class LibHandshake
    def initialize(setup)
      @web = setup.web
      @listener = setup.db.listen("127.0.0.1:0")
      @address = @listener.address_string
      @server = LangBench.echo_thread("lib-handshake-server") do
        loop do
          conn = @listener.accept
          begin
            conn.write(conn.readpartial(1))
          rescue ConsulNative::Error, EOFError
            nil
          ensure
            conn.close
          end
        end
      end
    end

    def once
      conn = @web.dial_address(@address, expected: "db", timeout: 5)
      conn.write("x")
      raise "no echo" unless conn.readpartial(1) == "x"
    ensure
      conn&.close
    end

    def close
      @listener.close
      @server.join(5)
    end
  end

  class SslHandshake
    def initialize(setup)
      @ctx = setup.client_ctx
      @srv = TCPServer.new("127.0.0.1", 0)
      @port = @srv.addr[1]
      server_ctx = setup.server_ctx
      @server = LangBench.echo_thread("ssl-handshake-server") do
        loop do
          raw = @srv.accept
          tls = OpenSSL::SSL::SSLSocket.new(LangBench.nodelay(raw), server_ctx)
          tls.sync_close = true
          begin
            tls.accept
            tls.write(tls.readpartial(1))
          rescue OpenSSL::SSL::SSLError, EOFError, SystemCallError
            nil
          ensure
            tls.close
          end
        end
      end
    end

    def once
      raw = LangBench.nodelay(TCPSocket.new("127.0.0.1", @port))
      tls = OpenSSL::SSL::SSLSocket.new(raw, @ctx)
      tls.sync_close = true
      tls.connect
      tls.write("x")
      raise "no echo" unless tls.readpartial(1) == "x"
    ensure
      tls ? tls.close : raw&.close
    end

    def close
      @srv.shutdown(Socket::SHUT_RDWR) rescue nil # wakes the blocked accept on Linux
      @server.join(5)
      @srv.close
    end
  end

  # -- echo ----------------------------------------------------------------------------------------------------------

  class LibEcho
    def initialize(setup, to_io:)
      @listener = setup.db.listen("127.0.0.1:0")
      @conn = setup.web.dial_address(@listener.address_string, expected: "db", timeout: 5)
      @server_conn = @listener.accept(timeout: 5)
      if to_io
        @io = @conn.to_io
        srv = @server_conn.to_io
        @server = LangBench.echo_thread("lib-echo-to_io") { loop { srv.write(srv.readpartial(65_536)) } }
        @closers = [-> { @io.close_write }, -> { @io.close }, -> { srv.close }]
      else
        srv = @server_conn
        @server = LangBench.echo_thread("lib-echo") { loop { srv.write(srv.readpartial(65_536)) } }
        @closers = [-> { @conn.close_write }]
      end
    end

    def once
      if @io
        @io.write(MESSAGE)
        raise "echo mismatch" unless @io.read(MESSAGE.bytesize) == MESSAGE
      else
        @conn.write(MESSAGE)
        raise "echo mismatch" unless @conn.read(MESSAGE.bytesize) == MESSAGE
      end
    end

    def close
      @closers.first.call
      @server.join(5)
      @closers.drop(1).each(&:call)
      @conn.close
      @server_conn.close
      @listener.close
    end
  end

  class SslEcho
    def initialize(setup)
      srv = TCPServer.new("127.0.0.1", 0)
      raw = LangBench.nodelay(TCPSocket.new("127.0.0.1", srv.addr[1]))
      raw_srv = LangBench.nodelay(srv.accept)
      srv.close
      server_tls = OpenSSL::SSL::SSLSocket.new(raw_srv, setup.server_ctx)
      server_tls.sync_close = true
      t = Thread.new { server_tls.accept }
      @tls = OpenSSL::SSL::SSLSocket.new(raw, setup.client_ctx)
      @tls.sync_close = true
      @tls.connect
      t.join(5)
      @server_tls = server_tls
      @server = LangBench.echo_thread("ssl-echo") { loop { server_tls.write(server_tls.readpartial(65_536)) } }
    end

    def once
      @tls.write(MESSAGE)
      raise "echo mismatch" unless @tls.read(MESSAGE.bytesize) == MESSAGE
    end

    def close
      @tls.io.shutdown(Socket::SHUT_WR)
      @server.join(5)
      @tls.close
      @server_tls.close
    end
  end

  # -- runner --------------------------------------------------------------------------------------------------------

  def median(values)
    s = values.sort
    s.size.odd? ? s[s.size / 2] : (s[s.size / 2 - 1] + s[s.size / 2]) / 2.0
  end

  def summary(values)
    med = median(values)
    { "median" => med, "min" => values.min, "max" => values.max,
      "spread_pct" => med.positive? ? 100.0 * (values.max - values.min) / med : 0.0, "runs" => values }
  end

  # Interleaves the cases run by run (A, B, C, A, B, C, ...) after a short warm-up of each.
  def measure(cases, runs, seconds, warmup)
    cases.each_value { |c| timed(warmup) { c.once } }
    rates = cases.keys.to_h { |k| [k, []] }
    switches = cases.keys.to_h { |k| [k, []] }
    runs.times do
      cases.each do |name, c|
        rate, cs = timed(seconds) { c.once }
        rates[name] << rate
        switches[name] << cs
      end
    end
    cases.keys.to_h { |k| [k, summary(rates[k]).merge("ctx_switches_per_op" => median(switches[k]))] }
  end

  def metric(name, m, baseline_does)
    base = m["baseline"]["median"]
    out = { "metric" => name, "baseline_does" => baseline_does }.merge(m)
    # The ratio is the median of per-run ratios (run i of the library against run i of the baseline, seconds
    # apart), which cancels slow drifts of machine load better than a ratio of medians (also given).
    pairs = m["library"]["runs"].zip(m["baseline"]["runs"]).map { |a, b| a / b }
    out["ratio"] = median(pairs)
    out["ratio_of_medians"] = m["library"]["median"] / base
    out["ratio_detached"] = median(m["detached"]["runs"].zip(m["baseline"]["runs"]).map { |a, b| a / b }) if m["detached"]
    out["ratio_pairs_min"] = pairs.min
    out["ratio_pairs_max"] = pairs.max
    out
  end

  BASELINE_HANDSHAKE = "Ruby OpenSSL::SSL::SSLSocket client -> SSLSocket server Thread; same leaves/roots; " \
                       "VERIFY_PEER both ways (+FAIL_IF_NO_PEER_CERT); TLS 1.3; OpenSSL's default 2 session tickets, " \
                       "never resumed; 1-byte echo; no SPIFFE check, no authorize"
  BASELINE_ECHO = "SSLSocket client <-> SSLSocket echo server Thread; same certificates; TLS 1.3; 64 B"

  def run(opts)
    setup = Setup.new
    results = {
      "language" => "ruby", "ruby" => RUBY_VERSION, "openssl" => OpenSSL::OPENSSL_LIBRARY_VERSION,
      "library" => ConsulNative.library_version, "library_path" => ConsulNative.library_path,
      "runs" => opts[:runs], "seconds_per_run" => opts[:seconds],
      "server" => "a Thread in the benchmark's process (library server for the library client, OpenSSL for OpenSSL)",
      "metrics" => []
    }
    begin
      if [nil, "handshakes"].include?(opts[:only])
        lib_hs = LibHandshake.new(setup)
        ssl_hs = SslHandshake.new(setup)
        begin
          hs = measure({ "library" => lib_hs, "baseline" => ssl_hs }, opts[:runs], opts[:seconds], opts[:warmup])
        ensure
          lib_hs.close
          ssl_hs.close
        end
        results["metrics"] << metric("handshakes/s", hs, BASELINE_HANDSHAKE)
      end
      return results unless [nil, "echo"].include?(opts[:only])


      cases = { "library" => LibEcho.new(setup, to_io: false), "detached" => LibEcho.new(setup, to_io: true),
                "baseline" => SslEcho.new(setup) }
      begin
        ec = measure(cases, opts[:runs], opts[:seconds], opts[:warmup])
      ensure
        cases.each_value(&:close)
      end
      results["metrics"] << metric("echo round trips/s (64 B)", ec, BASELINE_ECHO)
    ensure
      setup.close
    end
    results
  end

  def fmt(x)
    format("%s (%s..%s, ±%.0f%%)", group(x["median"]), group(x["min"]), group(x["max"]), x["spread_pct"] / 2)
  end

  def group(v)
    v.round.to_s.reverse.scan(/\d{1,3}/).join(",").reverse
  end

  def table(results)
    lines = [
      "Ruby #{results["ruby"]}: median of #{results["runs"]} interleaved runs of #{results["seconds_per_run"]} s each " \
      "(min..max, ±half the spread), runs interleaved lib, [to_io,] baseline; server: #{results["server"]}",
      "",
      "| metric | consulnative Conn#write/read | to_io socket | baseline | ratio lib/base: median of per-run ratios (min..max) | ctx switches/op lib, " \
      "to_io, base | baseline does |",
      "|---|---|---|---|---|---|---|"
    ]
    results["metrics"].each do |m|
      det = m["detached"] ? fmt(m["detached"]) : "—"
      ratio = format("%.2fx (%.2f..%.2f)", m["ratio"], m["ratio_pairs_min"], m["ratio_pairs_max"])
      ratio += format("; to_io %.2fx", m["ratio_detached"]) if m["ratio_detached"]
      cs = %w[library detached baseline].map { |k| m[k] ? format("%.1f", m[k]["ctx_switches_per_op"]) : "—" }.join(", ")
      lines << "| #{m["metric"]} | #{fmt(m["library"])} | #{det} | #{fmt(m["baseline"])} | #{ratio} | #{cs} | " \
               "#{m["baseline_does"]} |"
    end
    lines.join("\n")
  end
end

opts = { smoke: false, json: nil, runs: nil, seconds: nil, explain: false, only: nil }
OptionParser.new do |o|
  o.banner = "usage: ruby benches/lang/ruby_bench.rb [--smoke] [--json OUT] [--runs N] [--seconds S] [--explain]"
  o.on("--smoke", "a few seconds: checks that figures are produced") { opts[:smoke] = true }
  o.on("--json OUT", "also write the figures as JSON") { |v| opts[:json] = v }
  o.on("--runs N", Integer, "runs per case (default 15, smoke 2)") { |v| opts[:runs] = v }
  o.on("--seconds S", Float, "seconds per run (default 0.7, smoke 0.25)") { |v| opts[:seconds] = v }
  o.on("--only METRIC", %w[handshakes echo], "run one metric: handshakes or echo (for profiling)") { |v| opts[:only] = v }
  o.on("--explain", "print the analysis of the gaps after the table") { opts[:explain] = true }
end.parse!
opts[:runs] ||= opts[:smoke] ? 2 : 15
opts[:seconds] ||= opts[:smoke] ? 0.25 : 0.7
opts[:warmup] = opts[:smoke] ? 0.1 : 0.5

unless File.file?(ENV["CONSULNATIVE_LIB"])
  warn "ruby_bench: #{ENV["CONSULNATIVE_LIB"]} is missing; run `cargo build --release`"
  exit 2
end
require "fileutils"
require "consulnative"

results = LangBench.run(opts)
results["smoke"] = opts[:smoke]
puts LangBench.table(results)
results["metrics"].each do |m|
  %w[library baseline].each do |k|
    next if m[k]["median"].positive?

    warn "ruby_bench: no figure for #{m["metric"]} #{k}"
    exit 1
  end
end
File.write(opts[:json], JSON.pretty_generate(results)) if opts[:json]
if opts[:explain]
  analysis = File.join(__dir__, "ANALYSIS.md")
  puts
  puts File.file?(analysis) ? File.read(analysis) : "(no analysis file)"
end
