//! The Rust-facing library: [`Client`] (one agent, one roots watch) and [`Service`] (one identity, its listeners
//! and dialers). The C ABI in `ffi` wraps exactly this.

mod client;
mod service;

pub use client::{Client, ClientOptions, Registration, RegistrationCheck};
pub use service::{DialOptions, DialTarget, Service};
