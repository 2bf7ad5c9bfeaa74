//! [`CoreLog`]: one core's side of access logging. Lines are formatted
//! into a per-core buffer on the executor; the buffer is handed to the
//! writer thread when it passes [`FLUSH_AT`] bytes or when the core's flush
//! timer fires. Nothing here waits: a full buffer or a full channel drops
//! lines and counts them.

use std::cell::{Cell, RefCell};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

use super::date::Clock;
use super::format::format_record;
use super::record::LogRecord;
use super::writer::Batch;
use crate::config::LogFormat;
use crate::rules::sample::Facts;

/// Hand the buffer over once it holds this much.
pub const FLUSH_AT: usize = 32 << 10;
/// Lines beyond this many pending bytes are dropped.
pub const PENDING_MAX: usize = 256 << 10;
/// How often a core hands over what it has, so quiet periods still log.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct CoreLog {
    sender: RefCell<Option<SyncSender<Batch>>>,
    buf: RefCell<String>,
    pending_lines: Cell<u64>,
    sent: Cell<u64>,
    dropped: Cell<u64>,
    clock: Cell<Option<Clock>>,
    /// Requests (HTTP) and sessions (TCP) numbered on this core (`%rt`).
    requests: Cell<u64>,
}

impl CoreLog {
    /// A logger with no writer: [`CoreLog::is_enabled`] is false until
    /// [`CoreLog::attach`].
    pub fn disabled() -> Self {
        CoreLog::default()
    }

    pub fn attach(&self, sender: SyncSender<Batch>, clock: Clock) {
        *self.sender.borrow_mut() = Some(sender);
        self.clock.set(Some(clock));
    }

    /// Formats `record` as `format` and queues it.
    pub fn log(&self, format: &LogFormat, record: &LogRecord<'_>, facts: Option<&Facts<'_>>) {
        let clock = self.clock.get().unwrap_or(Clock::utc());
        self.emit(|out| format_record(out, format, record, clock, facts));
    }

    /// As [`Self::log`], at syslog `severity` (`set-log-level`) and with
    /// the line's RFC 5424 structured data rendered by `sd`
    /// (`log-format-sd`). Both travel in front of the pending line, marked
    /// (`syslog::LEVEL_MARK`, `syslog::SD_MARK`); the writer takes them off.
    pub fn log_with(
        &self,
        format: &LogFormat,
        record: &LogRecord<'_>,
        facts: Option<&Facts<'_>>,
        severity: u8,
        sd: Option<&super::custom::CustomFormat>,
    ) {
        if severity == super::syslog::SEVERITY_INFO && sd.is_none() {
            return self.log(format, record, facts);
        }
        let clock = self.clock.get().unwrap_or(Clock::utc());
        self.emit(|out| {
            if severity != super::syslog::SEVERITY_INFO {
                out.push(super::syslog::LEVEL_MARK);
                out.push(char::from(b'0' + severity.min(7)));
            }
            if let Some(sd) = sd {
                out.push(super::syslog::SD_MARK);
                let start = out.len();
                sd.render(out, record, clock, facts);
                // The mark ends the structured data.
                if out[start..].contains(super::syslog::SD_MARK) {
                    let clean = out[start..].replace(super::syslog::SD_MARK, "");
                    out.truncate(start);
                    out.push_str(&clean);
                }
                out.push(super::syslog::SD_MARK);
            }
            format_record(out, format, record, clock, facts)
        });
    }

    /// The next request number of the process (`%rt`): cores share
    /// nothing, so core `i` of `n` hands out `i`, `i + n`, `i + 2n`...,
    /// unique across cores without a shared counter (not consecutive).
    pub fn next_request_id(&self, core_index: usize, core_count: usize) -> u64 {
        let n = self.requests.get();
        self.requests.set(n + 1);
        n * core_count.max(1) as u64 + core_index as u64
    }

    /// The clock lines are dated with (UTC until attached).
    pub fn clock(&self) -> Clock {
        self.clock.get().unwrap_or(Clock::utc())
    }

    pub fn is_enabled(&self) -> bool {
        self.sender.borrow().is_some()
    }

    /// Appends one line written by `write` (which must not add a newline).
    pub fn emit(&self, write: impl FnOnce(&mut String)) {
        if !self.is_enabled() {
            return;
        }
        let full = {
            let mut buf = self.buf.borrow_mut();
            if buf.len() >= PENDING_MAX {
                self.dropped.set(self.dropped.get() + 1);
                return;
            }
            let start = buf.len();
            write(&mut buf);
            // One record, one line, whatever the formatter was given.
            if buf[start..].contains(['\n', '\r']) {
                let line: String = buf[start..]
                    .chars()
                    .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                    .collect();
                buf.truncate(start);
                buf.push_str(&line);
            }
            buf.push('\n');
            self.pending_lines.set(self.pending_lines.get() + 1);
            buf.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Hands pending lines to the writer without waiting.
    pub fn flush(&self) {
        let lines = self.pending_lines.get();
        if lines == 0 {
            return;
        }
        let sender = self.sender.borrow();
        let Some(sender) = sender.as_ref() else {
            return;
        };
        let text = std::mem::replace(&mut *self.buf.borrow_mut(), String::with_capacity(FLUSH_AT));
        self.pending_lines.set(0);
        match sender.try_send(Batch { text, lines }) {
            Ok(()) => self.sent.set(self.sent.get() + lines),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.set(self.dropped.get() + lines);
            }
        }
    }

    /// Flushes and lets go of the writer (at core stop).
    pub fn close(&self) {
        self.flush();
        self.sender.borrow_mut().take();
    }

    /// (lines handed to the writer, lines dropped).
    pub fn counters(&self) -> (u64, u64) {
        (self.sent.get(), self.dropped.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::sync_channel;

    #[test]
    fn lines_are_batched_and_counted() {
        let (tx, rx) = sync_channel(4);
        let log = CoreLog::disabled();
        log.emit(|s| s.push_str("ignored"));
        log.attach(tx, Clock::utc());
        log.emit(|s| s.push_str("one"));
        log.emit(|s| s.push_str("two\nlines"));
        log.flush();
        let batch = rx.try_recv().unwrap();
        assert_eq!(batch.text, "one\ntwo lines\n");
        assert_eq!(batch.lines, 2);
        assert_eq!(log.counters(), (2, 0));
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let (tx, rx) = sync_channel(1);
        let log = CoreLog::disabled();
        log.attach(tx, Clock::utc());
        log.emit(|s| s.push('a'));
        log.flush();
        log.emit(|s| s.push('b'));
        log.emit(|s| s.push('c'));
        log.flush(); // channel full: both lines dropped
        assert_eq!(log.counters(), (1, 2));
        assert_eq!(rx.try_recv().unwrap().text, "a\n");
    }

    #[test]
    fn a_full_buffer_drops_and_counts() {
        // No receiver drain and a large line: the buffer fills, flushes go
        // to a channel of one, and later lines are dropped, never blocking.
        let (tx, _rx) = sync_channel(1);
        let log = CoreLog::disabled();
        log.attach(tx, Clock::utc());
        let line = "x".repeat(1000);
        for _ in 0..2000 {
            log.emit(|s| s.push_str(&line));
        }
        let (sent, dropped) = log.counters();
        assert!(dropped > 0);
        let pending = log.pending_lines.get();
        assert_eq!(sent + dropped + pending, 2000);
    }
}
