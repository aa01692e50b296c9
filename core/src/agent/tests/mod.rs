//! Tests of the agent HTTP client against scripted HTTP servers (TCP, Unix socket, HTTPS).

mod client;
