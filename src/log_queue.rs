//! Log lines on their way to the application's log callback: a bounded queue delivered by one thread of its own.
//!
//! The library logs from every thread, the runtime's workers included (a refused handshake, rustls' own
//! diagnostics). Calling a Python or Ruby callback there would make a worker wait for the interpreter's lock, so
//! a busy application would slow every handshake. Lines are queued instead (at most [`CAPACITY`]); when the queue
//! is full they are counted, and one warning says how many were dropped once there is room.

use std::collections::VecDeque;
use std::ffi::CString;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use consulnative_core::api::LogLevel;

use super::ForeignCallback;
use crate::library::consulnative_log_callback;

/// Lines waiting for the callback, at most.
pub(crate) const CAPACITY: usize = 1024;

/// The callback a line is for, as set when the line was logged (a replaced callback's lines are skipped).
#[derive(Clone)]
pub(crate) struct Target {
    pub foreign: Arc<ForeignCallback>,
    pub function: consulnative_log_callback,
}

struct Line {
    target: Target,
    level: LogLevel,
    text: String,
}

#[derive(Default)]
struct State {
    lines: VecDeque<Line>,
    dropped: u64,
    last_target: Option<Target>,
    started: bool,
}

static STATE: Mutex<State> =
    Mutex::new(State { lines: VecDeque::new(), dropped: 0, last_target: None, started: false });
static WAKE: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Queues one line for `target`; counts it instead when [`CAPACITY`] lines are waiting.
pub(crate) fn push(target: &Target, level: LogLevel, text: &str) {
    let mut state = lock();
    if !state.started {
        let spawned = std::thread::Builder::new().name("consulnative-log".into()).spawn(run);
        if spawned.is_err() {
            return; // no thread, no delivery: a log line is never worth failing the caller
        }
        state.started = true;
    }
    if state.dropped > 0 && state.lines.len() < CAPACITY {
        let summary = summary(&mut state);
        state.lines.extend(summary);
    }
    if state.lines.len() < CAPACITY {
        state.lines.push_back(Line { target: target.clone(), level, text: text.to_string() });
    } else {
        state.dropped += 1;
        state.last_target = Some(target.clone());
    }
    drop(state);
    WAKE.notify_one();
}

/// The warning standing for the dropped lines, resetting the count.
fn summary(state: &mut State) -> Option<Line> {
    let n = std::mem::take(&mut state.dropped);
    let target = state.last_target.take()?;
    let text = format!("{n} log lines dropped: the log callback did not keep up ({CAPACITY} lines were waiting)");
    Some(Line { target, level: LogLevel::Warn, text })
}

fn run() {
    loop {
        let line = {
            let mut state = lock();
            loop {
                if let Some(line) = state.lines.pop_front() {
                    break line;
                }
                if state.dropped > 0 {
                    if let Some(line) = summary(&mut state) {
                        break line;
                    }
                }
                state = WAKE.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let Some(f) = line.target.function else { continue };
        let text = CString::new(line.text.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the application's callback, called with its own userdata and a string valid for the call; a
        // retired callback is not called (ForeignCallback::call returns None).
        line.target.foreign.call(|ud| unsafe { f(ud, line.level.into(), text.as_ptr()) });
    }
}
