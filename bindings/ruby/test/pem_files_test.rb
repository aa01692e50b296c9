# frozen_string_literal: true

require "test_helper"
require "openssl"
require "tmpdir"
require "consulnative/net_http"

# PEM files for own-TLS programs, the agent's authorize answer, and Net::HTTP over Connect.
class PemFilesTest < Minitest::Test
  include ConsulNativeTestHelper

  def test_pem_files_are_written_private_matching_and_rewritten_after_a_ca_rotation
    agent, _client, _db, web = agent_db_web
    Dir.mktmpdir do |dir|
      changes = Queue.new
      writer = web.write_pem_files(File.join(dir, "tls")) { |change| changes << change }
      first = changes.pop
      assert first.ok?
      assert_equal web.serial, first.leaf_serial
      tls = File.join(dir, "tls")
      assert_equal 0o600, File.stat(File.join(tls, "key.pem")).mode & 0o777
      cert = OpenSSL::X509::Certificate.new(File.read(File.join(tls, "cert.pem")))
      assert cert.check_private_key(OpenSSL::PKey.read(File.read(File.join(tls, "key.pem"))))
      agent.rotate_ca
      assert(eventually(15) { File.read(File.join(tls, "roots.pem")).scan("BEGIN CERTIFICATE").size == 2 })
      assert(eventually(15) { OpenSSL::X509::Certificate.new(File.read(File.join(tls, "cert.pem"))).serial != cert.serial })
      rotated = OpenSSL::X509::Certificate.new(File.read(File.join(tls, "cert.pem")))
      assert rotated.check_private_key(OpenSSL::PKey.read(File.read(File.join(tls, "key.pem"))))
      web.remove_callback(writer)
      wait_until_unchanged(tls) # a write already running when the writer was removed may still finish
    end
  end

  def wait_until_unchanged(dir)
    last = nil
    20.times do
      now = Dir.children(dir).sort
      return if now == last

      last = now
      sleep 0.25
    end
  end

  def test_authorize_returns_the_reason_and_raises_when_denied
    agent, _client, _db, web = agent_db_web
    refute_empty web.authorize("db")
    agent.deny("web", "db")
    error = assert_raises(ConsulNative::AuthorizationDenied) { web.authorize("db") }
    assert_match(/Action: DENY/, error.message)
  end

  def test_net_http_dials_the_service_by_name_and_checks_its_identity
    _agent, client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    client.register("db", port: listener.address[1], address: "127.0.0.1")
    server = Thread.new do
      listener.accept(timeout: 10) do |conn|
        head = +""
        head << conn.readpartial(4096) until head.include?("\r\n\r\n")
        body = "hello #{conn.peer.service}: #{head.lines.first.split[1]}"
        conn.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
      end
    end
    http = ConsulNative::HTTP.new(web, "db", timeout: 5)
    response = http.start { |h| h.get("/path?x=1") }
    assert_equal "hello web: /path?x=1", response.body
    assert_equal "db", http.peer.service
    server.join(5)
  end
end
