#!/usr/bin/env ruby
# frozen_string_literal: true

# A minimal HTTP/1.1 responder (no Rack) on a Connect-native listener: each connection is handed off as a plain
# Socket (`conn.to_io`) and served with ordinary line-oriented Ruby socket code.
#
#   ruby -Ibindings/ruby/lib examples/ruby/http_responder.rb            # dev agent + a demo request, then exits
#   CONSUL_HTTP_ADDR=... ruby -Ibindings/ruby/lib examples/ruby/http_responder.rb serve 127.0.0.1:8443

require "consulnative"

# Answers one request on `io` (a Socket): says who the verified caller is.
def respond(io, peer)
  request_line = io.gets or return
  method, path, = request_line.split(" ", 3)
  headers = {}
  while (line = io.gets) && line != "\r\n"
    name, value = line.split(":", 2)
    headers[name.downcase] = value.to_s.strip
  end
  io.read(headers["content-length"].to_i) if headers["content-length"]
  body = "hello #{peer.service} (#{peer.uri}), you asked #{method} #{path}\n"
  io.write "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: #{body.bytesize}\r\n" \
           "Connection: close\r\n\r\n#{body}"
ensure
  io.close
end

def serve(listener)
  listener.each_connection_in_thread do |conn|
    respond(conn.to_io, conn.peer)
  end
end

if ARGV[0] == "serve"
  ConsulNative::Client.open do |client|
    client.service("api") do |svc|
      svc.wait_ready(timeout: 15)
      svc.listen(ARGV[1] || "127.0.0.1:8443", alpn: ["http/1.1"]) do |listener|
        puts "api: serving HTTP on #{listener.address_string}"
        trap("INT") { Thread.new { listener.close } }
        serve(listener)
      end
    end
  end
else
  # Demo: dev agent, the responder, and one request from service "web".
  ConsulNative::DevAgent.open do |agent|
    agent.client do |client|
      client.service("api") do |api|
        client.service("web") do |web|
          api.wait_ready(timeout: 15)
          web.wait_ready(timeout: 15)
          api.listen("127.0.0.1:0", alpn: ["http/1.1"]) do |listener|
            server = Thread.new { serve(listener) }
            web.dial_address(listener.address_string, expected: "api", alpn: ["http/1.1"], timeout: 5) do |conn|
              io = conn.to_io
              io.write "GET /status HTTP/1.1\r\nHost: api\r\n\r\n"
              puts io.read
              io.close
            end
            listener.close
            server.join
          end
        end
      end
    end
  end
end
