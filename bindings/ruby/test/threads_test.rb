# frozen_string_literal: true

require_relative "test_helper"

class ThreadsTest < Minitest::Test
  include ConsulNativeTestHelper

  # Counts in a Ruby thread for `seconds` while `blocker` runs in another; returns [count, blocker's value].
  def count_while(seconds)
    @counter = 0
    stop = false
    counting = Thread.new { @counter += 1 until stop }
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    value = yield
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    stop = true
    counting.join
    [@counter, value, elapsed, seconds]
  end

  def test_a_blocking_accept_in_one_thread_does_not_stop_other_ruby_threads
    _agent, _client, db, = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))

    # Baseline: the counter alone, for the same time, while the main thread sleeps (which releases the VM lock).
    baseline, = count_while(1.0) { sleep 1.0 }
    count, result, elapsed, = count_while(1.0) do
      Thread.new do
        listener.accept(timeout: 1.0)
      rescue ConsulNative::TimeoutError => e
        e
      end.value
    end
    assert_kind_of ConsulNative::TimeoutError, result
    assert_in_delta 1.0, elapsed, 0.5
    ratio = count.to_f / baseline
    puts format("\n  counter thread: %<c>d increments during a 1 s blocking accept (baseline %<b>d while sleeping, " \
                "%<r>.0f%%)", c: count, b: baseline, r: ratio * 100)
    File.write(ENV["CONSULNATIVE_MEASURE_FILE"], "#{count} #{baseline}\n") if ENV["CONSULNATIVE_MEASURE_FILE"]
    assert_operator count, :>, 100_000, "the counter must keep counting while accept blocks"

    # Control: the same function attached WITHOUT blocking: true holds the VM lock for the whole wait. Count only
    # during the call itself (the counter thread may run before and after it).
    _, unblocked, = count_while(1.0) do
      out = FFI::MemoryPointer.new(:pointer)
      before = @counter
      NonBlockingAccept.consulnative_listener_accept(listener.to_ptr, 1000, out)
      @counter - before
    end
    _, blocked, = count_while(1.0) do
      out = FFI::MemoryPointer.new(:pointer)
      before = @counter
      ConsulNative::Native.consulnative_listener_accept(listener.to_ptr, 1000, out)
      @counter - before
    end
    puts format("  during the call alone: %<b>d increments with blocking: true, %<u>d without (control)",
                b: blocked, u: unblocked)
    assert_operator blocked, :>, 100_000
    # Without blocking: true the counter can only run in the one 100 ms time slice before the call starts.
    assert_operator unblocked, :<, blocked / 3, "the control shows what blocking: true buys"
  end

  # The control for the test above: accept attached without `blocking: true`.
  module NonBlockingAccept
    extend FFI::Library
    ffi_lib ConsulNative.library_path
    attach_function :consulnative_listener_accept, %i[pointer int64 pointer], :uint32
  end

  def test_blocking_wait_ready_and_read_also_leave_other_threads_running
    address = "127.0.0.1:#{free_port}"
    web = owned(client_for(address).service("web"))
    count, = count_while(0.8) do
      web.wait_ready(timeout: 0.8)
    rescue ConsulNative::NotReady
      nil
    end
    assert_operator count, :>, 100_000

    _agent, _client, db, web2 = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    conn = owned(web2.dial_address(listener.address_string, expected: "db", timeout: 5))
    count, = count_while(0.8) do
      conn.readpartial(1, timeout: 0.8)
    rescue ConsulNative::TimeoutError
      nil
    end
    assert_operator count, :>, 100_000
  end

  def test_closing_the_listener_from_another_thread_wakes_a_blocked_accept_with_closed_error
    _agent, _client, db, = agent_db_web
    listener = db.listen("127.0.0.1:0")
    address = listener.address
    waiter = Thread.new do
      listener.accept
    rescue ConsulNative::Error => e
      e
    end
    sleep 0.2
    listener.close
    err = Timeout.timeout(5) { waiter.value }
    assert_kind_of ConsulNative::ClosedError, err
    assert_raises(Errno::ECONNREFUSED) { TCPSocket.new(*address) }
    assert_raises(ConsulNative::ClosedError) { listener.accept(timeout: 0.1) }
    listener.close # idempotent
  end

  def test_closing_a_connection_from_another_thread_wakes_a_blocked_read_and_the_peer_reads_end_of_stream
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    server = Thread.new { listener.accept(timeout: 10) }
    conn = web.dial_address(listener.address_string, expected: "db", timeout: 5)
    peer = owned(server.value)
    reader = Thread.new do
      conn.read(1) # no timeout: only the close can end it
    rescue ConsulNative::Error => e
      e
    end
    sleep 0.3
    assert reader.alive?, "the reader is blocked"
    started = ConsulNative.now
    conn.close
    err = Timeout.timeout(5) { reader.value }
    woke_after = ConsulNative.now - started
    assert_kind_of ConsulNative::ClosedError, err
    assert_operator woke_after, :<, 1, "woken by the close (the read has no timeout)"
    assert_nil peer.read(1, timeout: 5), "the peer reads a clean end of stream (close_notify)"
    assert_raises(ConsulNative::ClosedError) { conn.read(1, timeout: 1) }
    conn.close # idempotent
    assert conn.closed?
  end

  def test_thread_raise_and_kill_interrupt_an_accept_that_waits_forever
    _agent, _client, db, = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    waiter = Thread.new do
      listener.accept
    rescue Interrupt => e
      e
    end
    sleep 0.2
    waiter.raise(Interrupt, "stop waiting")
    assert_kind_of Interrupt, Timeout.timeout(3) { waiter.value }

    killed = Thread.new { listener.accept }
    sleep 0.2
    killed.kill
    assert Timeout.timeout(3) { killed.join }
    # The listener is still usable afterwards.
    assert_raises(ConsulNative::TimeoutError) { listener.accept(timeout: 0.1) }
  end

  def test_a_connection_reads_in_one_thread_while_another_writes
    _agent, _client, db, web = agent_db_web
    listener = owned(db.listen("127.0.0.1:0"))
    echo_server(listener)
    conn = owned(web.dial_address(listener.address_string, expected: "db", timeout: 5))
    chunks = Array.new(50) { |i| "chunk-#{i.to_s.rjust(3, "0")}|" }
    writer = Thread.new { chunks.each { |c| conn.write(c) } }
    got = conn.read(chunks.join.bytesize, timeout: 10)
    writer.join
    assert_equal chunks.join, got
  end

  def test_callbacks_run_on_a_ruby_thread_while_the_main_thread_blocks
    agent, _client, db, web = agent_db_web
    agent.deny("web", "db")
    listener = owned(db.listen("127.0.0.1:0"))
    threads = Queue.new
    listener.on_refused { |_r| threads << Thread.current }
    dialer = Thread.new do
      web.dial_address(listener.address_string, expected: "db", timeout: 5) { |c| c.read(1, timeout: 2) }
    rescue ConsulNative::Error
      nil
    end
    # The main thread blocks in accept while the refusal callback runs.
    assert_raises(ConsulNative::TimeoutError) { listener.accept(timeout: 1.5) }
    dialer.join
    callback_thread = Timeout.timeout(5) { threads.pop }
    refute_equal Thread.main, callback_thread
    assert_kind_of Thread, callback_thread
  end
end
