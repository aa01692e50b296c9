# frozen_string_literal: true

require "minitest/autorun"
require "socket"
require "timeout"
require "consulnative"

# Shared helpers: every test runs against a dev agent (the consulnative-dev-agent binary as a child process)
# over real sockets.
module ConsulNativeTestHelper
  # Fast watch timing for tests: short blocking waits and retries.
  FAST = { blocking_wait_ms: 2000, retry_max_ms: 300 }.freeze

  def setup
    @closers = []
  end

  def teardown
    @closers.reverse_each do |h|
      h.close
    rescue StandardError
      nil
    end
  end

  # Closes `handle` at teardown (in reverse order of creation).
  def owned(handle)
    @closers << handle
    handle
  end

  def start_agent(**options)
    owned(ConsulNative::DevAgent.new(**options))
  end

  def client_for(agent_or_address, **config)
    address = agent_or_address.is_a?(String) ? agent_or_address : agent_or_address.address
    owned(ConsulNative::Client.new(address: address, **FAST, **config))
  end

  def ready_service(client, name, timeout: 10)
    owned(client.service(name)).wait_ready(timeout: timeout)
  end

  # An agent, a client and ready `db` and `web` services.
  def agent_db_web(**agent_options)
    agent = start_agent(**agent_options)
    client = client_for(agent)
    [agent, client, ready_service(client, "db"), ready_service(client, "web")]
  end

  # Echoes every accepted connection until end of stream, in threads.
  def echo_server(listener)
    Thread.new do
      listener.each_connection_in_thread do |conn|
        while (data = conn.read_partial_or_nil)
          conn.write(data)
        end
        conn.close_write
      rescue ConsulNative::Error
        nil
      end
    end
  end

  def eventually(timeout = 10, interval = 0.02)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      result = yield
      return result if result
      return false if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep interval
    end
  end

  def free_port
    s = TCPServer.new("127.0.0.1", 0)
    port = s.addr[1]
    s.close
    port
  end
end

# A convenience used by the echo server only.
class ConsulNative::Conn
  def read_partial_or_nil
    readpartial(16 * 1024)
  rescue EOFError
    nil
  end
end
