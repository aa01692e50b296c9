# frozen_string_literal: true

require "test_helper"
require "json"
require "consulnative/net_http"
require "consulnative/rack_handler"

# A Rack application served on a Connect listener by WEBrick, called with Net::HTTP over Connect.
class RackTest < Minitest::Test
  include ConsulNativeTestHelper

  APP = lambda do |env|
    body = JSON.generate("peer" => env["consulnative.peer_service"], "uri" => env["consulnative.peer_uri"],
                         "path" => env["PATH_INFO"], "body" => env["rack.input"].read,
                         "remote" => env["REMOTE_ADDR"])
    [200, { "content-type" => "application/json", "content-length" => body.bytesize.to_s }, [body]]
  end

  def serve(client, db)
    server = ConsulNative::RackHandler.new(db, APP).start
    @closers << server
    client.register("db", port: server.address[1], address: "127.0.0.1")
    server
  end

  def test_net_http_reaches_the_rack_app_which_sees_the_caller_on_one_kept_alive_connection
    _agent, client, db, web = agent_db_web
    server = serve(client, db)
    http = ConsulNative::HTTP.new(web, "db", timeout: 5)
    http.start do |h|
      first = JSON.parse(h.get("/hello").body)
      assert_equal "web", first["peer"]
      assert_equal web.spiffe_id, first["uri"]
      assert_equal "/hello", first["path"]
      assert_equal "127.0.0.1", first["remote"]
      second = JSON.parse(h.post("/echo", "payload", "content-type" => "text/plain").body)
      assert_equal "payload", second["body"]
    end
    assert_equal "db", http.peer.service
    assert_equal({ accepted: 1, refused: 0 }, server.listener.counts)
  end

  def test_a_deny_intention_makes_net_http_raise_authorization_denied
    agent, client, db, web = agent_db_web
    serve(client, db)
    agent.deny("web", "db")
    error = assert_raises(ConsulNative::AuthorizationDenied) do
      ConsulNative::HTTP.new(web, "db", timeout: 5).start { |h| h.get("/") }
    end
    assert_match(/web => db denied by the agent/, error.message)
  end

  def test_the_handler_is_registered_with_rack
    assert_equal ConsulNative::RackHandler, Rack::Handler.get("consulnative")
  end
end
