//! `consulnative pem-files`: keeps a service's PEM files fresh and tells the program that reads them.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use consulnative_core::api::{Client, LogLevel, PemFilesCallback, PemFilesWrite};

use crate::args::{PemFilesArgs, PidSource, Reload};

/// Waits for the certificates, writes them, then rewrites them and runs the reload after every change. Returns
/// only with `--once` or on an error that stops it (no certificates within the ready timeout, an unwritable
/// directory). Watch errors during the first wait are not logged one by one: the final message carries the last.
pub fn run(client: &Client, args: &PemFilesArgs, log_level: LogLevel) -> Result<ExitCode, String> {
    let name = &args.service;
    crate::set_log_level(log_level.min(LogLevel::Error));
    let service = client.service(name).map_err(|e| e.message().to_string())?;
    let ready = service.wait_ready(Some(args.ready_timeout));
    crate::set_log_level(log_level);
    ready.map_err(|e| {
        format!(
            "cannot get certificates for service \"{name}\" from the agent at {}: {}",
            client.agent_address(),
            e.message()
        )
    })?;
    // Nobody can be using files that did not exist: the first write then reloads nothing.
    let existed = args.dir.join("cert.pem").exists();
    let (tx, rx) = mpsc::channel::<Result<PemFilesWrite, String>>();
    let tx = Mutex::new(tx);
    let on_change: PemFilesCallback = Arc::new(move |outcome| {
        let message = outcome.cloned().map_err(|e| e.message().to_string());
        let _ = tx.lock().unwrap_or_else(|e| e.into_inner()).send(message);
    });
    let _writer = service.write_pem_files(&args.dir, Some(on_change)).map_err(|e| e.message().to_string())?;
    let mut first = true;
    if args.once {
        for outcome in rx.try_iter() {
            report(&args.dir, outcome)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    while let Ok(outcome) = rx.recv() {
        let mut last = report(&args.dir, outcome).ok();
        let mut writes = usize::from(last.is_some());
        // A CA rotation changes the roots, then the leaf: two writes a few milliseconds apart. Reload once they have
        // settled, so the server reads one stable set instead of reloading while the next write switches the files.
        loop {
            match rx.recv_timeout(SETTLE) {
                Ok(outcome) => {
                    if let Ok(write) = report(&args.dir, outcome) {
                        last = Some(write);
                        writes += 1;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err("the certificate watch stopped".into()),
            }
        }
        // The very first write creates files nobody uses yet; a later write in the same batch replaced them.
        let skip = first && !existed && writes <= 1;
        first = false;
        if let Some(write) = last {
            if !skip {
                reload(&args.reload, &write);
            }
        }
    }
    Err("the certificate watch stopped".into())
}

/// How long the files must stay unchanged before the reload runs (coalesces a rotation's writes into one reload).
const SETTLE: std::time::Duration = std::time::Duration::from_millis(300);

/// Prints one write (stdout) or failure (stderr).
fn report(dir: &Path, outcome: Result<PemFilesWrite, String>) -> Result<PemFilesWrite, String> {
    match outcome {
        Ok(w) => {
            println!("{}: leaf serial {} ({}), {} root(s)", dir.display(), w.leaf_serial, w.spiffe_id, w.roots);
            Ok(w)
        }
        Err(message) => {
            eprintln!("consulnative: {message} (the previous files stay in place)");
            Err(message)
        }
    }
}

/// Runs the reload command or sends the signal; failures are reported and the watch goes on.
fn reload(reload: &Reload, write: &PemFilesWrite) {
    match reload {
        Reload::None => {}
        Reload::Command(cmd) => {
            let status = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .env("CONSULNATIVE_PEM_DIR", &write.dir)
                .env("CONSULNATIVE_LEAF_SERIAL", &write.leaf_serial)
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => eprintln!("consulnative: reload command {cmd:?} failed: {s}"),
                Err(e) => eprintln!("consulnative: cannot run the reload command {cmd:?}: {e}"),
            }
        }
        Reload::Signal { signal, target } => {
            let pid = match target {
                PidSource::Pid(p) => Ok(*p),
                PidSource::File(f) => std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read the pid file {}: {e}", f.display()))
                    .and_then(|t| {
                        t.trim().parse::<i32>().ok().filter(|p| *p > 0).ok_or(format!("no pid in {}", f.display()))
                    }),
            };
            match pid {
                Ok(pid) => {
                    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
                    if unsafe { libc::kill(pid, *signal) } != 0 {
                        let e = std::io::Error::last_os_error();
                        eprintln!("consulnative: cannot send signal {signal} to process {pid}: {e}");
                    }
                }
                Err(message) => eprintln!("consulnative: {message}; no signal sent"),
            }
        }
    }
}
