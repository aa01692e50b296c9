# frozen_string_literal: true

# Ruby binding for libconsulnative: Consul Connect-native services (mutual TLS with SPIFFE identities,
# intentions enforced by the agent) for Ruby programs.
#
# @example
#   require "consulnative"
#   client = ConsulNative::Client.new                 # CONSUL_HTTP_ADDR etc.; or address:, token:
#   client.service("web") do |svc|
#     svc.wait_ready(timeout: 10)
#     svc.dial("db", timeout: 5) { |conn| conn.write("ping"); conn.read(4) }
#   end
module ConsulNative
  # How long one native wait lasts at most when a Ruby call waits longer (or forever): between slices the
  # thread returns to Ruby, so Thread#raise, Thread#kill, Ctrl-C and process exit are never held up.
  WAIT_SLICE = 0.25

  # `consulnative_log_level` numbers.
  LOG_LEVELS = { 1 => :error, 2 => :warn, 3 => :info, 4 => :debug }.freeze

  @log_block = nil

  class << self
    # @return [String] the native library's version (e.g. `"0.1.0"`)
    def library_version
      Native.consulnative_version.read_string.force_encoding(Encoding::UTF_8)
    end

    # @param code [Integer] a `consulnative_result`
    # @return [String] its short name (`"authorization denied"`; unknown codes give `"unknown result"`)
    def result_name(code)
      Native.consulnative_result_name(code).read_string.force_encoding(Encoding::UTF_8)
    end

    # @return [String] the library's message for the last failed call on this thread (empty if none)
    def last_error
      Native.last_error
    end

    # @return [String] the path of the loaded native library
    def library_path
      Native.library_path
    end

    # Sends library log lines up to `level` to the block (on library threads: keep it short, never call
    # {.logger=} from it). Messages never contain tokens or keys. Without a block, restores the default (stderr,
    # only when `CONSULNATIVE_LOG` names a level).
    # @param level [Symbol] `:error`, `:warn`, `:info` or `:debug`
    # @yieldparam level [Symbol]
    # @yieldparam message [String]
    # @return [nil]
    def set_logger(level: :info, &block)
      number = LOG_LEVELS.key(level) or raise ArgumentError, "unknown log level #{level.inspect}"
      if block
        Callbacks.arm_at_exit
        @log_block = block
        Native.check(Native.consulnative_set_logger(Callbacks::LOG, nil, number))
      else
        Native.check(Native.consulnative_set_logger(nil, nil, number))
        @log_block = nil
      end
      nil
    end

    # Sends library log lines to a `Logger` (or anything with `error`/`warn`/`info`/`debug`); nil restores the
    # default.
    # @param logger [#info, nil]
    def logger=(logger)
      if logger
        set_logger(level: :debug) { |lvl, msg| logger.public_send(lvl, "consulnative: #{msg}") }
      else
        set_logger
      end
    end

    # @api private
    def now
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # @api private
    # Checks a public `timeout:` argument. One meaning everywhere, as in the Python binding: nil (or infinity)
    # waits forever, 0 does not wait, a positive number is seconds, a negative number (or NaN) raises.
    # @return [Numeric, nil] the timeout, nil for forever
    # @raise [ArgumentError] negative or NaN; [TypeError] not a number
    def check_timeout(timeout)
      return nil if timeout.nil?
      unless timeout.is_a?(Numeric)
        raise TypeError, "timeout must be nil or a number of seconds, got #{timeout.inspect}"
      end
      raise ArgumentError, "timeout must be nil (wait forever) or >= 0 seconds, got #{timeout}" unless timeout >= 0

      timeout.infinite? ? nil : timeout
    end

    # @api private
    # Runs a native wait in slices of at most {WAIT_SLICE} until it does not time out or `timeout` (seconds;
    # nil: forever; checked by {.check_timeout}) passes. `timeout_code` is what the function returns on timeout.
    # Raises on any other failure, and on the final timeout with the library's message.
    # @yieldparam ms [Integer] this slice's timeout
    # @yieldreturn [Integer] a result code
    def sliced(timeout, timeout_code)
      timeout = check_timeout(timeout)
      deadline = timeout && (now + timeout)
      loop do
        left = deadline && (deadline - now)
        slice = left ? [[left, WAIT_SLICE].min, 0].max : WAIT_SLICE
        rc = yield Native.ms(slice)
        return if rc == Native::OK
        next if rc == timeout_code && (deadline.nil? || now < deadline)

        context = timeout && rc == timeout_code ? "after #{timeout}s" : nil
        Native.check(rc, context)
      end
    end

    # @api private
    # Yields `handle` and closes it when the block ends.
    def with_block(handle)
      yield handle
    ensure
      handle.close
    end

    # @api private
    # Splits `127.0.0.1:80` / `[::1]:80` into `["127.0.0.1", 80]` / `["::1", 80]`.
    def split_address(text)
      return nil if text.nil?

      host, _, port = text.rpartition(":")
      [host.delete_prefix("[").delete_suffix("]"), Integer(port)]
    end

    private

    def reset_logger_at_exit
      return unless @log_block

      Native.consulnative_set_logger(nil, nil, 1)
      @log_block = nil
    end

    def deliver_log(level, message)
      block = @log_block
      block&.call(LOG_LEVELS.fetch(level, :debug), message&.force_encoding(Encoding::UTF_8))
    end
  end
end

require_relative "consulnative/errors"
require_relative "consulnative/native"
require_relative "consulnative/version"
require_relative "consulnative/callbacks"
require_relative "consulnative/handle"
require_relative "consulnative/client"
require_relative "consulnative/service"
require_relative "consulnative/listener"
require_relative "consulnative/conn"
require_relative "consulnative/dev_agent"
require_relative "consulnative/pem_files"
