//! `consulnative`: Connect for programs with their own TLS stack, and two questions to the agent.
//!
//! - `consulnative pem-files --service web --dir /etc/web/tls [--reload-command CMD | --signal HUP --pid-file F]`
//!   keeps `cert.pem`, `key.pem` and `roots.pem` fresh and runs the reload after each change;
//! - `consulnative status web` prints the service's SPIFFE ID, leaf serial and expiry, roots and last agent error;
//! - `consulnative authorize web db` asks the agent whether `web` may connect to `db`.
//!
//! The agent comes from the `CONSUL_*` environment (`CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, ...) or `--address`.
//! Exit status: 0 on success, 1 when the command failed (no certificates, denied, agent error), 2 on bad usage.

mod args;
mod pem_files;
mod status;

use std::process::ExitCode;
use std::sync::Arc;

use args::{Args, Command, UsageError};
use consulnative_core::api::{self, Client, ClientOptions, LogLevel};

const USAGE: &str = "\
usage: consulnative [--address ADDR] [--log LEVEL] COMMAND ...

commands:
  pem-files --service NAME --dir DIR [--reload-command CMD] [--signal SIG (--pid N | --pid-file FILE)]
            [--ready-timeout SECONDS] [--once]
      Keeps DIR/cert.pem (leaf and intermediates), DIR/key.pem (mode 0600) and DIR/roots.pem fresh for service
      NAME, and runs CMD (with sh -c) or sends SIG to the process after each change. Exits 1 with the reason when
      the certificates cannot be had within the ready timeout (default 30 s). --once writes them and exits.
  status NAME [--ready-timeout SECONDS]
      Prints NAME's SPIFFE ID, leaf serial and expiry, CA roots and last agent error; exits 1 when not ready.
  authorize SOURCE DESTINATION
      Asks the agent whether SOURCE (a service name or a spiffe:// URI) may connect to DESTINATION; exits 0 when
      allowed, 1 when denied, printing the agent's reason.

The agent comes from CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_CACERT, ... or --address.
--log error|warn|info|debug sets what the library reports on stderr (default warn).
";

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(UsageError::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(UsageError::Bad(message)) => {
            eprintln!("consulnative: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("consulnative: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    set_log_level(args.log_level);
    let mut options = ClientOptions::from_env();
    if let Some(address) = &args.address {
        options.set("address", Some(address)).map_err(|e| e.message().to_string())?;
    }
    let client = Client::new(options).map_err(|e| format!("cannot use the agent: {}", e.message()))?;
    match args.command {
        Command::PemFiles(p) => pem_files::run(&client, &p, args.log_level),
        Command::Status { service, ready_timeout } => status::print_status(&client, &service, ready_timeout),
        Command::Authorize { source, destination } => status::authorize(&client, &source, &destination),
    }
}

/// Sends library log lines up to `level` to stderr.
pub(crate) fn set_log_level(level: LogLevel) {
    api::set_log_sink(Some(Arc::new(|level, line| eprintln!("consulnative: {level:?}: {line}"))), level);
}

/// The default library log level of the command.
pub(crate) const DEFAULT_LOG_LEVEL: LogLevel = LogLevel::Warn;
