//! Agent address, TLS and token configuration, from explicit values and CONSUL_* environment variables.
