#!/usr/bin/env ruby
# frozen_string_literal: true

# A Connect-native client of the echo server: dials "echo" through the catalog as service "web".
#
#   CONSUL_HTTP_ADDR=127.0.0.1:PORT ruby -Ibindings/ruby/lib examples/ruby/echo_client.rb [message...]

require "consulnative"

message = ARGV.empty? ? "hello over mutual TLS" : ARGV.join(" ")
ConsulNative::Client.open do |client|
  client.service("web") do |svc|
    svc.wait_ready(timeout: 15)
    reply = svc.dial("echo", timeout: 5) do |conn|
      conn.write(message)
      conn.close_write
      conn.read(timeout: 5)
    end
    puts "echo answered: #{reply}"
  end
end
