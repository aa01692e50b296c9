# frozen_string_literal: true

module ConsulNative
  # The base of every error this library raises. {#code} is the C API's `consulnative_result` number and the
  # message is the library's own (`consulnative_last_error`): which service, which certificate, what the agent
  # answered.
  class Error < StandardError
    # @return [Integer, nil] the `consulnative_result` code (nil for errors raised by the Ruby layer itself)
    attr_reader :code

    # @param message [String]
    # @param code [Integer, nil]
    def initialize(message = nil, code = nil)
      @code = code || self.class.const_get(:CODE)
      super(message)
    end

    # @return [String] the library's short name for {#code} (`"authorization denied"`)
    def code_name
      ConsulNative.result_name(code)
    end

    # The class for a result code.
    # @param code [Integer]
    # @return [Class<Error>]
    def self.class_for(code)
      CLASSES.fetch(code, Error)
    end

    # An instance of the right subclass.
    # @return [Error]
    def self.for_code(code, message)
      class_for(code).new(message, code)
    end

    CODE = nil
    CLASSES = {} # rubocop:disable Style/MutableConstant
  end

  # Defines one subclass per result code.
  # @api private
  def self.define_error(name, code)
    klass = Class.new(Error)
    klass.const_set(:CODE, code)
    Error::CLASSES[code] = klass
    klass
  end
  private_class_method :define_error

  # 1: a required pointer argument was NULL.
  NullArgument = define_error(:NullArgument, 1)
  # 2: an argument was invalid (not UTF-8, malformed address, out-of-range value, bad PEM).
  InvalidArgument = define_error(:InvalidArgument, 2)
  # 3: the Consul agent could not be reached.
  AgentUnreachable = define_error(:AgentUnreachable, 3)
  # 4: the agent answered with an error status; the message holds status and body.
  AgentError = define_error(:AgentError, 4)
  # 5: the agent answered 403: the ACL token lacks a permission.
  AgentPermissionDenied = define_error(:AgentPermissionDenied, 5)
  # 6: the agent's answer could not be understood.
  AgentBadResponse = define_error(:AgentBadResponse, 6)
  # 7: the service has no usable certificates yet.
  NotReady = define_error(:NotReady, 7)
  # 8: the operation did not complete before its timeout.
  TimeoutError = define_error(:TimeoutError, 8)
  # 9: the TLS handshake failed.
  HandshakeError = define_error(:HandshakeError, 9)
  # 10: a peer certificate chain did not verify against the current CA roots.
  CertificateInvalid = define_error(:CertificateInvalid, 10)
  # 11: the peer's SPIFFE identity is not the expected one.
  IdentityMismatch = define_error(:IdentityMismatch, 11)
  # 12: the agent's intentions denied the connection; the message holds the agent's reason.
  AuthorizationDenied = define_error(:AuthorizationDenied, 12)
  # 13: authorization could not be decided, so the connection is refused.
  AuthorizationFailed = define_error(:AuthorizationFailed, 13)
  # 14: an I/O error on a socket. (Not named IOError, so it never shadows Ruby's ::IOError.)
  IoError = define_error(:IoError, 14)
  # 15: the connection or handle was closed.
  ClosedError = define_error(:ClosedError, 15)
  # 16: service discovery found no healthy instance (when every instance fails, the last one's error is raised).
  NoInstances = define_error(:NoInstances, 16)
  # 17: an output buffer was too small (the binding retries; you should never see it).
  BufferTooSmall = define_error(:BufferTooSmall, 17)
  # 18: a bug: a Rust panic was caught at the ABI boundary.
  Panic = define_error(:Panic, 18)
  # 19: an application callback (see {Listener#peer_check}) rejected the peer.
  RejectedByApplication = define_error(:RejectedByApplication, 19)
  # 20: an internal error that is none of the above.
  InternalError = define_error(:InternalError, 20)

  # Shorter aliases.
  PermissionDenied = AgentPermissionDenied
end
