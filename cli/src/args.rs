//! Command-line parsing (a few flags: no parser crate).

use std::path::PathBuf;
use std::time::Duration;

use consulnative_core::api::LogLevel;

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub struct Args {
    /// `--address`: the agent, overriding `CONSUL_HTTP_ADDR`.
    pub address: Option<String>,
    /// `--log`: what the library reports on stderr.
    pub log_level: LogLevel,
    /// What to do.
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// Keep PEM files fresh.
    PemFiles(PemFilesArgs),
    /// Print a service's certificate status.
    Status {
        /// The service.
        service: String,
        /// How long to wait for certificates.
        ready_timeout: Duration,
    },
    /// Ask the agent about an authorization.
    Authorize {
        /// A service name or SPIFFE URI.
        source: String,
        /// The destination service.
        destination: String,
    },
}

/// How to tell the program using the files about a change.
#[derive(Debug, PartialEq)]
pub enum Reload {
    /// Nothing: the program watches the files itself.
    None,
    /// Run this command with `sh -c`.
    Command(String),
    /// Send this signal to a process.
    Signal {
        /// The signal number.
        signal: i32,
        /// Which process.
        target: PidSource,
    },
}

/// Where the process to signal comes from.
#[derive(Debug, PartialEq)]
pub enum PidSource {
    /// A fixed pid.
    Pid(i32),
    /// A pid file, read at each change (the program may have restarted).
    File(PathBuf),
}

/// The `pem-files` arguments.
#[derive(Debug, PartialEq)]
pub struct PemFilesArgs {
    /// The service whose certificates to keep.
    pub service: String,
    /// Where to keep them.
    pub dir: PathBuf,
    /// What to do after each change.
    pub reload: Reload,
    /// How long to wait for the first certificates.
    pub ready_timeout: Duration,
    /// Write once and exit.
    pub once: bool,
}

/// Why the command line was not run.
#[derive(Debug, PartialEq)]
pub enum UsageError {
    /// `--help` / `help`.
    Help,
    /// A mistake, described.
    Bad(String),
}

fn bad<T>(message: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError::Bad(message.into()))
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, UsageError> {
    let mut args = args.into_iter().peekable();
    let mut address = None;
    let mut log_level = crate::DEFAULT_LOG_LEVEL;
    let command = loop {
        match args.next().as_deref() {
            None => return bad("a command is needed"),
            Some("-h") | Some("--help") | Some("help") => return Err(UsageError::Help),
            Some("--address") => address = Some(value(&mut args, "--address")?),
            Some("--log") => log_level = parse_level(&value(&mut args, "--log")?)?,
            Some(cmd) if !cmd.starts_with('-') => break cmd.to_string(),
            Some(flag) => return bad(format!("unknown option {flag}")),
        }
    };
    let mut positional = Vec::new();
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(UsageError::Help),
            "--once" => flags.push((arg, None)),
            f if f.starts_with("--") => {
                let v = value(&mut args, f)?;
                flags.push((arg, Some(v)));
            }
            _ => positional.push(arg),
        }
    }
    let take = |name: &str| flags.iter().rev().find(|(f, _)| f == name).and_then(|(_, v)| v.clone());
    let allowed: &[&str] = match command.as_str() {
        "pem-files" => {
            &["--service", "--dir", "--reload-command", "--signal", "--pid", "--pid-file", "--ready-timeout", "--once"]
        }
        "status" => &["--ready-timeout"],
        _ => &[],
    };
    if let Some((f, _)) = flags.iter().find(|(f, _)| !allowed.contains(&f.as_str())) {
        return bad(format!("{command} does not take {f}"));
    }
    let ready_timeout = match take("--ready-timeout") {
        None => Duration::from_secs(30),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
            _ => return bad(format!("--ready-timeout takes seconds, got {v:?}")),
        },
    };
    let command = match command.as_str() {
        "pem-files" => {
            if !positional.is_empty() {
                return bad(format!("pem-files takes no positional argument ({:?})", positional[0]));
            }
            let service = take("--service").ok_or(UsageError::Bad("pem-files needs --service NAME".into()))?;
            let dir = take("--dir").ok_or(UsageError::Bad("pem-files needs --dir DIR".into()))?;
            let reload = match (take("--reload-command"), take("--signal"), take("--pid"), take("--pid-file")) {
                (None, None, None, None) => Reload::None,
                (Some(cmd), None, None, None) => Reload::Command(cmd),
                (None, Some(sig), pid, file) => {
                    let target = match (pid, file) {
                        (Some(p), None) => PidSource::Pid(
                            p.parse().ok().filter(|n| *n > 0).ok_or(UsageError::Bad(format!("bad --pid {p:?}")))?,
                        ),
                        (None, Some(f)) => PidSource::File(PathBuf::from(f)),
                        _ => return bad("--signal needs one of --pid N or --pid-file FILE"),
                    };
                    Reload::Signal { signal: parse_signal(&sig)?, target }
                }
                (Some(_), Some(_), _, _) => return bad("--reload-command and --signal exclude each other"),
                _ => return bad("--pid and --pid-file go with --signal"),
            };
            let once = flags.iter().any(|(f, _)| f == "--once");
            Command::PemFiles(PemFilesArgs { service, dir: PathBuf::from(dir), reload, ready_timeout, once })
        }
        "status" => match positional.as_slice() {
            [service] => Command::Status { service: service.clone(), ready_timeout },
            _ => return bad("status takes one service name"),
        },
        "authorize" => match positional.as_slice() {
            [source, destination] => Command::Authorize { source: source.clone(), destination: destination.clone() },
            _ => return bad("authorize takes SOURCE and DESTINATION"),
        },
        other => return bad(format!("unknown command {other:?}")),
    };
    Ok(Args { address, log_level, command })
}

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, UsageError> {
    args.next().ok_or(UsageError::Bad(format!("{flag} needs a value")))
}

fn parse_level(text: &str) -> Result<LogLevel, UsageError> {
    Ok(match text {
        "error" => LogLevel::Error,
        "warn" => LogLevel::Warn,
        "info" => LogLevel::Info,
        "debug" => LogLevel::Debug,
        _ => return bad(format!("--log takes error, warn, info or debug, got {text:?}")),
    })
}

/// A signal by name (`HUP`, `SIGHUP`) or number.
pub fn parse_signal(text: &str) -> Result<i32, UsageError> {
    if let Ok(n) = text.parse::<i32>() {
        if n > 0 {
            return Ok(n);
        }
    }
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    Ok(match name.as_str() {
        "HUP" => libc::SIGHUP,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "WINCH" => libc::SIGWINCH,
        _ => return bad(format!("unknown signal {text:?} (HUP, USR1, USR2, TERM, INT, QUIT, WINCH or a number)")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<Args, UsageError> {
        parse(line.split_whitespace().map(str::to_string))
    }

    #[test]
    fn pem_files_with_a_signal_and_a_pid_file() {
        let args =
            parse_words("--address 127.0.0.1:1 pem-files --service web --dir /t --signal HUP --pid-file /p").unwrap();
        assert_eq!(args.address.as_deref(), Some("127.0.0.1:1"));
        let Command::PemFiles(p) = args.command else { panic!("not pem-files") };
        assert_eq!(p.service, "web");
        assert_eq!(p.reload, Reload::Signal { signal: libc::SIGHUP, target: PidSource::File("/p".into()) });
        assert_eq!(p.ready_timeout, Duration::from_secs(30));
        assert!(!p.once);
    }

    #[test]
    fn reload_command_and_signal_exclude_each_other() {
        let err = parse_words("pem-files --service w --dir d --reload-command x --signal HUP --pid 1").unwrap_err();
        assert!(matches!(err, UsageError::Bad(m) if m.contains("exclude")));
    }

    #[test]
    fn missing_service_and_unknown_flags_are_usage_errors() {
        assert!(matches!(parse_words("pem-files --dir d"), Err(UsageError::Bad(m)) if m.contains("--service")));
        assert!(matches!(parse_words("status web --dir d"), Err(UsageError::Bad(m)) if m.contains("--dir")));
        assert!(matches!(parse_words("authorize web"), Err(UsageError::Bad(_))));
        assert!(matches!(parse_words("frobnicate"), Err(UsageError::Bad(_))));
        assert_eq!(parse_words("--help"), Err(UsageError::Help));
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(parse_signal("SIGUSR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse_signal("hup"), Ok(libc::SIGHUP));
        assert_eq!(parse_signal("15"), Ok(15));
        assert!(parse_signal("NOPE").is_err());
    }
}
