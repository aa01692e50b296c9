#!/usr/bin/env ruby
# frozen_string_literal: true

# A threaded Connect-native echo server: one Ruby thread per connection.
#
#   ruby -Ibindings/ruby/lib examples/ruby/echo_server.rb [listen-address]
#
# With CONSUL_HTTP_ADDR unset it starts a dev agent (the consulnative-dev-agent binary, as a child process that
# ends with this one) and prints a CONSUL_HTTP_ADDR for the client.
# It registers itself as "echo" (TTL check) so `echo_client.rb` can dial it by name.

require "consulnative"

listen_at = ARGV[0] || "127.0.0.1:0"
agent = ENV["CONSUL_HTTP_ADDR"] ? nil : ConsulNative::DevAgent.new
address = agent ? agent.address : ENV.fetch("CONSUL_HTTP_ADDR")
puts "export CONSUL_HTTP_ADDR=#{address}" if agent

client = ConsulNative::Client.new(address: address)
client.service("echo") do |svc|
  svc.wait_ready(timeout: 15)
  svc.on_rotate { |s| warn "echo: new leaf certificate #{s&.serial}" }
  svc.listen(listen_at) do |listener|
    listener.on_refused { |r| warn "echo: refused #{r.peer_uri || r.peer_address}: #{r.code_name}: #{r.reason}" }
    host, port = listener.address
    client.register("echo", id: "echo-#{port}", address: host, port: port, check: "ttl:30000")
    heartbeat = Thread.new { loop { client.pass_ttl("service:echo-#{port}"); sleep 10 } }
    puts "echo: listening on #{listener.address_string} as #{svc.spiffe_id}"
    $stdout.flush
    once = Mutex.new # held forever by the first stop: a second signal (`timeout` sends INT twice) does nothing
    stop = lambda do
      return unless once.try_lock

      warn "echo: #{listener.counts}" # before close: a closed handle raises ClosedError
      listener.close
    end
    trap("INT") { Thread.new(&stop) }
    trap("TERM") { Thread.new(&stop) }

    listener.each_connection_in_thread do |conn|
      warn "echo: #{conn.peer.service} connected from #{conn.peer_address.join(":")}"
      loop { conn.write(conn.readpartial(16 * 1024)) }
    rescue EOFError, ConsulNative::Error
      nil
    end
    heartbeat.kill
    client.deregister("echo-#{port}")
    puts "echo: stopped"
  end
end
client.close
agent&.close
