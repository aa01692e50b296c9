# frozen_string_literal: true

# A Rack app served on a Connect listener (WEBrick underneath), called with ConsulNative::HTTP (a Net::HTTP that
# dials services by name); then a deny intention. Self-contained: starts a dev agent. Needs ruby-rack.
#
#   ruby -Ibindings/ruby/lib examples/ruby/rack_server.rb

require "consulnative"
require "consulnative/net_http"
require "consulnative/rack_handler"

app = lambda do |env|
  body = "hello #{env["consulnative.peer_service"]} (#{env["consulnative.peer_uri"]}) from #{env["PATH_INFO"]}\n"
  [200, { "content-type" => "text/plain", "content-length" => body.bytesize.to_s }, [body]]
end

ConsulNative::DevAgent.open do |agent|
  agent.client do |client|
    db = client.service("db").wait_ready(timeout: 10)
    web = client.service("web").wait_ready(timeout: 10)
    server = ConsulNative::RackHandler.new(db, app).start
    client.register("db", port: server.address[1], address: "127.0.0.1")

    http = ConsulNative::HTTP.new(web, "db", timeout: 5)
    http.start { |h| print h.get("/hello").body }
    puts "server identity: #{http.peer.uri}"

    agent.deny("web", "db")
    begin
      ConsulNative::HTTP.new(web, "db", timeout: 5).start { |h| h.get("/again") }
    rescue ConsulNative::AuthorizationDenied => e
      puts "after deny: #{e.class}: #{e.message}"
    end
    server.close
    db.close
    web.close
  end
end
