//! Where hookrun's output goes, written through one place so that a failed write — a closed pipe (`| head -1`), a
//! full disk (`> /dev/full`), a terminal that hung up with its SSH session — never panics and never stops the
//! command: the chain goes on and the services come back. The first failure is remembered; `cli::main` reports it
//! on stderr once the command has ended and the exit code says so.
//!
//! Human lines on stdout and every line on stderr have their control characters escaped (`hookrun_archive::escape`):
//! what a hook, an archive or a container wrote cannot fake a line of hookrun's. Colour is used only on a terminal,
//! and never when `NO_COLOR` is set.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use hookrun_archive::escape::escape_controls;
use serde::Serialize;

/// The first failed write to stdout, as text.
static STDOUT_FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Prints one human line on stdout (control characters escaped, so it stays one line).
pub fn line(text: &str) {
    write_stdout(format!("{}\n", escape_controls(text)).as_bytes());
}

/// Prints `text` on stdout without a newline (a question waiting for its answer).
pub fn prompt(text: &str) {
    write_stdout(escape_controls(text).as_bytes());
}

/// Prints `bytes` on stdout as they are (a generated shell script or man page: hookrun's own text).
pub fn raw(bytes: &[u8]) {
    write_stdout(bytes);
}

/// Prints `doc` as the command's one JSON document on stdout.
pub fn document(doc: &impl Serialize) {
    if stdout_failure().is_some() {
        return;
    }
    // Written as it is encoded, through a buffer: a document of 100,000 backups is never held whole as text.
    let mut stdout = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut stdout, doc)
        .map_err(|e| match e.io_error_kind() {
            Some(_) => std::io::Error::from(e).to_string(),
            None => format!("cannot encode the JSON document: {e}"),
        })
        .and_then(|()| {
            stdout
                .write_all(b"\n")
                .and_then(|()| stdout.flush())
                .map_err(|e| e.to_string())
        });
    if let Err(failure) = written {
        remember(failure);
    }
}

/// Prints `doc` as the command's one JSON document on stdout, its keys in alphabetical order at every level (as a
/// `serde_json::Value` holds them, whatever order the struct declares them in).
pub fn sorted_document(doc: &impl Serialize) {
    match serde_json::to_value(doc) {
        Ok(value) => document(&value),
        Err(e) => remember(format!("cannot encode the JSON document: {e}")),
    }
}

/// Why stdout could not be written, once a write failed.
pub fn stdout_failure() -> Option<String> {
    STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write_stdout(bytes: &[u8]) {
    if stdout_failure().is_some() {
        // Once the reader is gone, later lines would fail the same way.
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        remember(e.to_string());
    }
}

fn remember(failure: String) {
    let mut slot = STDOUT_FAILED.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert(failure);
}

/// Prints one line on stderr, escaped; a stderr that cannot be written is ignored (there is nowhere left to say so).
pub fn error_line(text: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("{}\n", escape_controls(text)).as_bytes());
}

/// Whether stderr gets colour: only on a terminal, and not with `NO_COLOR` set (to anything but empty).
pub fn stderr_colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The writer the log (tracing) formats its events into: each event is one write, its final newline kept and every
/// other control character escaped; on a colour terminal the level is coloured here, the formatter itself writes
/// no escape codes. Write errors are swallowed: a log line is never worth stopping a run for.
#[derive(Debug, Clone, Copy)]
pub struct LogWriter {
    pub colour: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (text.as_ref(), ""),
        };
        let mut shown = escape_controls(body).into_owned();
        if self.colour {
            shown = colour_level(&shown);
        }
        let _ = std::io::stderr()
            .lock()
            .write_all(format!("{shown}{newline}").as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Colours the first level word of a formatted log line (`ERROR` red, `WARN` yellow, `INFO` green, others dim).
fn colour_level(line: &str) -> String {
    for (level, code) in [
        ("ERROR", "31"),
        ("WARN", "33"),
        ("INFO", "32"),
        ("DEBUG", "2"),
        ("TRACE", "2"),
    ] {
        if let Some(at) = line.find(&format!("{level} ")) {
            return format!("{}\x1b[{code}m{level}\x1b[0m{}", &line[..at], &line[at + level.len()..]);
        }
    }
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::colour_level;

    #[test]
    fn only_the_level_word_is_coloured() {
        assert_eq!(
            colour_level("2026-12-02T03:25:58Z  WARN run 3 was interrupted"),
            "2026-12-02T03:25:58Z  \x1b[33mWARN\x1b[0m run 3 was interrupted"
        );
        assert_eq!(colour_level("no level here"), "no level here");
    }
}
