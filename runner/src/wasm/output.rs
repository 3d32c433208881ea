//! What a hook says: its log requests and its WASI stdout/stderr, shown through `tracing` with the hook's name,
//! with the host's memory bounded whatever the hook does — lines are cut at [`MAX_LOG_MESSAGE`], at most
//! [`MAX_LOG_LINES`] are shown per run (the rest are counted), and only the last [`STDERR_TAIL`] bytes of stderr are
//! kept, to explain a trap.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hookrun_sdk::abi::{LogLevel, MAX_LOG_LINES, MAX_LOG_MESSAGE};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Bytes of the guest's stderr kept to explain a failure.
pub const STDERR_TAIL: usize = 8 * 1024;

/// Shows a hook's log lines, within limits.
#[derive(Debug)]
pub(crate) struct LogSink {
    hook: String,
    shown: usize,
    dropped: usize,
}

impl LogSink {
    pub(crate) fn new(hook: &str) -> Self {
        Self {
            hook: hook.to_string(),
            shown: 0,
            dropped: 0,
        }
    }

    /// Shows one line at `level`, unless the hook has used up its lines.
    pub(crate) fn line(&mut self, level: LogLevel, message: &str) {
        if self.shown >= MAX_LOG_LINES {
            if self.dropped == 0 {
                tracing::warn!(hook = %self.hook, "logged more than {MAX_LOG_LINES} lines; dropping the rest");
            }
            self.dropped += 1;
            return;
        }
        self.shown += 1;
        let message = truncate(message, MAX_LOG_MESSAGE);
        let hook = self.hook.as_str();
        match level {
            LogLevel::Error => tracing::error!(hook, "{message}"),
            LogLevel::Warn => tracing::warn!(hook, "{message}"),
            LogLevel::Info => tracing::info!(hook, "{message}"),
            LogLevel::Debug => tracing::debug!(hook, "{message}"),
            LogLevel::Trace => tracing::trace!(hook, "{message}"),
        }
    }

    /// Lines not shown because of the cap.
    pub(crate) fn dropped(&self) -> usize {
        self.dropped
    }
}

/// `s` cut to at most `max` bytes on a character boundary, with a marker when cut.
pub(crate) fn truncate(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &s[..end], s.len() - end).into()
}

/// One of the guest's output streams, split into lines for the log.
#[derive(Debug)]
struct Stream {
    level: LogLevel,
    sink: Arc<Mutex<LogSink>>,
    /// The line being written (at most `MAX_LOG_MESSAGE` bytes).
    partial: Vec<u8>,
    /// Whether the rest of an over-long line is being skipped.
    skipping: bool,
    /// The last bytes written, for stderr.
    tail: Option<VecDeque<u8>>,
}

impl Stream {
    fn write(&mut self, mut bytes: &[u8]) {
        if let Some(tail) = &mut self.tail {
            let keep = bytes.len().min(STDERR_TAIL);
            let excess = (tail.len() + keep).saturating_sub(STDERR_TAIL);
            tail.drain(..excess);
            tail.extend(&bytes[bytes.len() - keep..]);
        }
        while !bytes.is_empty() {
            let (line, rest, complete) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            if !self.skipping {
                let room = MAX_LOG_MESSAGE - self.partial.len();
                self.partial.extend_from_slice(&line[..line.len().min(room)]);
                if line.len() > room {
                    self.emit(" … [line cut]");
                    self.skipping = true;
                }
            }
            if complete {
                if !self.skipping {
                    self.emit("");
                }
                self.skipping = false;
            }
            bytes = rest;
        }
    }

    fn emit(&mut self, suffix: &str) {
        let line = String::from_utf8_lossy(&self.partial).into_owned() + suffix;
        self.partial.clear();
        self.sink.lock().unwrap().line(self.level, &line);
    }

    fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.emit("");
        }
    }
}

/// A guest output stream (stdout or stderr) as WASI sees it: every write goes straight into the log, so nothing
/// is left in a buffer when the guest traps or exits.
#[derive(Debug, Clone)]
pub(crate) struct GuestOutput(Arc<Mutex<Stream>>);

impl GuestOutput {
    /// Stdout: lines logged at info.
    pub(crate) fn stdout(sink: Arc<Mutex<LogSink>>) -> Self {
        Self::new(LogLevel::Info, sink, false)
    }

    /// Stderr: lines logged at warn, and the tail kept.
    pub(crate) fn stderr(sink: Arc<Mutex<LogSink>>) -> Self {
        Self::new(LogLevel::Warn, sink, true)
    }

    fn new(level: LogLevel, sink: Arc<Mutex<LogSink>>, keep_tail: bool) -> Self {
        Self(Arc::new(Mutex::new(Stream {
            level,
            sink,
            partial: Vec::new(),
            skipping: false,
            tail: keep_tail.then(VecDeque::new),
        })))
    }

    /// Logs an unfinished last line.
    pub(crate) fn finish(&self) {
        self.0.lock().unwrap().finish();
    }

    /// The last bytes written (stderr only), lossily decoded.
    pub(crate) fn tail(&self) -> String {
        let stream = self.0.lock().unwrap();
        let bytes: Vec<u8> = stream.tail.iter().flatten().copied().collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.lock().unwrap().write(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.0.lock().unwrap().write(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// The guest's last words before a trap, as one line: a Rust panic's "panicked at FILE:LINE: MESSAGE", or else the
/// last line of stderr.
pub(crate) fn last_words(stderr_tail: &str) -> Option<String> {
    let lines: Vec<&str> = stderr_tail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
        .collect();
    if let Some(i) = lines.iter().rposition(|l| l.contains("panicked at")) {
        let head = lines[i]
            .split_once("panicked at")
            .map_or(lines[i], |(_, at)| at)
            .trim()
            .trim_end_matches(':');
        let message = lines[i + 1..].join(" ");
        let one = if message.is_empty() {
            format!("panicked at {head}")
        } else {
            format!("panicked at {head}: {message}")
        };
        return Some(truncate(&one, 500).into_owned());
    }
    lines.last().map(|l| truncate(l, 500).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_panic_becomes_one_line() {
        let stderr = "some earlier line\nthread 'main' panicked at src/main.rs:4:5:\nboom\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(last_words(stderr).unwrap(), "panicked at src/main.rs:4:5: boom");
        assert_eq!(last_words("a\nb\n").unwrap(), "b");
        assert_eq!(last_words(""), None);
    }

    #[test]
    fn stderr_keeps_only_its_tail_and_lines_are_cut() {
        let sink = Arc::new(Mutex::new(LogSink::new("t")));
        let out = GuestOutput::stderr(sink.clone());
        let mut big = vec![b'x'; 3 * STDERR_TAIL];
        big.push(b'\n');
        let mut stream = out.clone();
        OutputStream::write(&mut stream, Bytes::from(big)).unwrap();
        OutputStream::write(&mut stream, Bytes::from_static(b"end")).unwrap();
        let tail = out.tail();
        assert_eq!(tail.len(), STDERR_TAIL);
        assert!(tail.ends_with("x\nend"));
        out.finish();
        // One cut line for the long one, one for "end".
        assert_eq!(sink.lock().unwrap().shown, 2);
    }

    #[test]
    fn lines_past_the_cap_are_counted_not_shown() {
        let mut sink = LogSink::new("t");
        for i in 0..MAX_LOG_LINES + 10 {
            sink.line(LogLevel::Info, &format!("line {i}"));
        }
        assert_eq!(sink.shown, MAX_LOG_LINES);
        assert_eq!(sink.dropped(), 10);
    }

    #[test]
    fn truncation_respects_characters() {
        let s = "é".repeat(10);
        let cut = truncate(&s, 5);
        assert!(cut.starts_with("éé…"), "{cut}");
    }
}
