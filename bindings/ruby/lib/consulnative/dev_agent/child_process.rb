# frozen_string_literal: true

require "tempfile"

module ConsulNative
  class DevAgent
    # Raised when the `consulnative-dev-agent` binary cannot be found or started; the message says what was
    # tried and how to fix it. {#code} is nil (a Ruby-side error, not a library result).
    class NotFound < Error; end

    # One `consulnative-dev-agent` child process: found, spawned, waited for, stopped and reaped.
    #
    # Its stdin is a pipe whose only write end is ours and it runs with `--exit-on-stdin-eof`, so it exits as soon
    # as this process dies, however it dies (even `exit!` or SIGKILL): no orphans. A `Process.detach` thread reaps
    # it. Holds no reference to its {DevAgent}, so the agent object stays collectable; its finalizer only closes
    # stdin. Agents still running when Ruby exits are stopped by one at_exit hook.
    # @api private
    class ChildProcess
      BINARY_NAME = "consulnative-dev-agent"
      # The copy a platform gem ships, beside the library (lib/consulnative/).
      PACKAGED = File.expand_path("../#{BINARY_NAME}", __dir__)
      READY_LINE = %r{\Aconsulnative-dev-agent listening on http://(\S+)\s*\z}.freeze
      # Seconds to wait for the ready line.
      START_TIMEOUT = 20
      @children = {} # pid => ChildProcess, for the at_exit hook
      @lock = Mutex.new
      @armed = false
      @grace = 2

      class << self
        # Seconds to wait for the exit after closing stdin, then again after SIGTERM, then after SIGKILL
        # (default 2; the agent exits within milliseconds of the EOF).
        # @return [Numeric]
        attr_accessor :grace

        # Where the binary is looked for, first match wins: `CONSULNATIVE_DEV_AGENT` (a path), the copy inside the
        # gem, beside the loaded libconsulnative (symlinks resolved), then `PATH`.
        # @return [String] the binary's path
        # @raise [NotFound]
        def binary_path
          find_binary(ENV["CONSULNATIVE_DEV_AGENT"], loaded_library, ENV["PATH"])
        end

        # {.binary_path} with its inputs given (for tests).
        # @param env [String, nil] the value of `CONSULNATIVE_DEV_AGENT`
        # @param library [String] the loaded library's path
        # @param path [String, nil] the value of `PATH`
        # @param packaged [String] the gem's copy
        # @return [String]
        # @raise [NotFound] with everything tried and how to fix it
        def find_binary(env, library, path, packaged = PACKAGED)
          if env && !env.empty?
            return env if executable?(env)

            raise NotFound, "CONSULNATIVE_DEV_AGENT=#{env} is not an executable file: point it at a " \
                            "#{BINARY_NAME} binary, or unset it to use the gem's, the one beside the library or " \
                            "the one on PATH"
          end
          return packaged if executable?(packaged)

          library = real_path(library)
          beside = File.join(File.dirname(library), BINARY_NAME)
          return beside if executable?(beside)

          dirs = path.to_s.split(File::PATH_SEPARATOR).reject(&:empty?)
          on_path = dirs.map { |dir| File.join(dir, BINARY_NAME) }.find { |p| executable?(p) }
          return on_path if on_path

          raise NotFound, "#{BINARY_NAME} not found. Tried: CONSULNATIVE_DEV_AGENT (unset); #{packaged} (the gem's " \
                          "copy); #{beside} (beside the loaded #{library}); #{BINARY_NAME} on PATH " \
                          "(#{dirs.join(File::PATH_SEPARATOR)}). Fix: install the consulnative platform gem (it " \
                          "ships the binary), or `cargo build` (it builds the binary next to the library), or set " \
                          "CONSULNATIVE_DEV_AGENT=/path/to/#{BINARY_NAME}, or put it on PATH."
        end

        # Spawns the binary with `args` and waits for its ready line.
        # @param token [String, nil] passed as `CONSUL_DEV_AGENT_TOKEN` (never on the command line)
        # @return [Array(ChildProcess, String)] the child and its `ip:port`
        def start(args, token)
          binary = binary_path
          child = new(binary, args, token)
          register(child)
          [child, child.await_ready]
        end

        # Stops every agent still running (at exit: closes all stdins first so they exit together).
        def stop_all
          children = @lock.synchronize { @children.values.tap { @children.clear } }
          children.each(&:close_stdin)
          children.each(&:stop)
        end

        # @api private
        def forget(child)
          @lock.synchronize { @children.delete(child.pid) }
        end

        private

        def register(child)
          @lock.synchronize do
            @children.delete_if { |_, c| !c.alive? }
            @children[child.pid] = child
            next if @armed

            @armed = true
            owner = ::Process.pid
            # Under minitest/autorun (tests run inside an at_exit handler) this runs after the tests. A forked
            # child inherits the hook but not the agents: only the process that started them stops them.
            at_exit { stop_all if ::Process.pid == owner }
          end
        end

        def loaded_library
          Native.library_path
        end

        def real_path(path)
          File.realpath(path)
        rescue SystemCallError
          path
        end

        def executable?(path)
          File.file?(path) && File.executable?(path)
        end
      end

      # @return [Integer]
      attr_reader :pid

      # @api private
      def initialize(binary, args, token)
        @binary = binary
        @stderr = Tempfile.create("consulnative-dev-agent-")
        File.unlink(@stderr.path) # only the two open descriptors keep it
        in_r, @stdin = IO.pipe
        @stdout, out_w = IO.pipe
        begin
          # A nil token removes an inherited CONSUL_DEV_AGENT_TOKEN from the child's environment. Its own process
          # group: a terminal's Ctrl-C (SIGINT to the foreground group) reaches only us, so a program that traps it
          # can still use the agent while it shuts down; the agent ends with us anyway (stdin EOF).
          @pid = ::Process.spawn({ "CONSUL_DEV_AGENT_TOKEN" => token }, binary, *args,
                                 in: in_r, out: out_w, err: @stderr, close_others: true, pgroup: true)
        rescue SystemCallError => e
          [@stdin, @stdout, @stderr].each(&:close)
          raise NotFound, "cannot start #{binary}: #{e.message}"
        ensure
          in_r.close
          out_w.close
        end
        @waiter = ::Process.detach(@pid)
        @waiter.name = "consulnative-dev-agent #{@pid} reaper" if @waiter.respond_to?(:name=)
      end

      # Reads the ready line. On failure (early exit, garbage, timeout) stops the child and raises with its stderr.
      # @return [String] the agent's `ip:port`
      def await_ready
        line = read_line(ConsulNative.now + START_TIMEOUT)
        match = line && READY_LINE.match(line)
        return match[1] if match

        status = terminate
        detail = stderr_text
        stop
        how = status&.exitstatus ? "with status #{status.exitstatus}" : status.inspect
        what = line.nil? ? "exited #{how} before it was ready" : "printed #{line.inspect}"
        klass = status&.exitstatus == 2 ? InvalidArgument : IoError # 2: it refused our arguments
        raise klass.new("#{@binary} #{what}#{detail.empty? ? "" : ": #{detail}"}")
      end

      # @return [Boolean] whether the process has not been reaped yet
      def alive?
        @waiter.alive?
      end

      # Ends the process: EOF on stdin (it exits at once), then SIGTERM, then SIGKILL, each after a bounded wait;
      # reaped either way. Idempotent and safe from several threads.
      # @return [Process::Status, nil]
      def stop
        status = terminate
        close_pipes
        self.class.forget(self)
        status
      end

      # Closes our end of its stdin: the agent exits. Finalizer-safe (no locks, no waiting).
      def close_stdin
        @stdin.close unless @stdin.closed?
      rescue IOError
        nil
      end

      private

      # Closes stdin, signals if it lingers, and waits for the reaper: the exit status, nil if it would not die.
      def terminate
        close_stdin
        %w[TERM KILL].each do |signal|
          break if @waiter.join(self.class.grace)

          begin
            ::Process.kill(signal, @pid)
          rescue SystemCallError
            nil
          end
        end
        @waiter.join(self.class.grace) ? @waiter.value : nil
      end

      # The first line of its stdout, or nil at end of stream; raises TimeoutError after `deadline`.
      def read_line(deadline)
        buf = String.new
        until buf.include?("\n")
          left = deadline - ConsulNative.now
          if left <= 0
            terminate
            detail = stderr_text
            stop
            raise TimeoutError.new("#{@binary} printed no ready line within #{START_TIMEOUT}s: #{detail}")
          end
          next unless IO.select([@stdout], nil, nil, left)

          chunk = @stdout.read_nonblock(4096, exception: false)
          return buf.empty? ? nil : buf if chunk.nil?

          buf << chunk if chunk.is_a?(String)
        end
        buf.lines.first
      end

      def stderr_text
        return "" if @stderr.closed?

        # Its first lines say what went wrong; the usage text after them does not.
        @stderr.pread(16 * 1024, 0).to_s.split(/^Usage:/).first.to_s.strip
      rescue EOFError, IOError
        ""
      end

      def close_pipes
        [@stdout, @stderr].each { |io| io.close unless io.closed? }
      rescue IOError
        nil
      end
    end
  end
end
