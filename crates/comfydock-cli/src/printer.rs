//! Output discipline: data to stdout, status to stderr, JSON when asked. Status, warnings and
//! hints show every URL redacted ([`comfydock_foundation::redact`]).

use std::io::Write as _;
use std::sync::{Mutex, PoisonError};

use comfydock_foundation::redact::redact_text;
use owo_colors::OwoColorize as _;
use serde::Serialize;

/// Decides what is shown, and where. Data methods take `self` too, so every line a command
/// prints goes through the printer and can later be redirected in one place.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    quiet: bool,
    json: bool,
    verbose: bool,
}

impl Printer {
    pub fn new(quiet: bool, json: bool, verbose: bool) -> Self {
        Self { quiet, json, verbose }
    }

    /// `--json` was given: commands print one JSON document to stdout and no prose.
    pub fn json_mode(self) -> bool {
        self.json
    }

    /// Progress bars are drawn only on a TTY, and never in quiet, verbose or JSON mode.
    pub fn show_progress(self) -> bool {
        !self.quiet && !self.json && !self.verbose && std::io::IsTerminal::is_terminal(&std::io::stderr())
    }

    /// A line of data on stdout (always shown, even with `--quiet`).
    #[allow(clippy::unused_self)]
    pub fn data(self, line: impl std::fmt::Display) {
        let mut out = anstream::stdout();
        let _ = writeln!(out, "{line}");
    }

    /// Data on stdout through one buffer, for listings that may run to 100,000 lines: the
    /// first lines appear as soon as a few kilobytes are ready, without one write per line.
    #[allow(clippy::unused_self)]
    pub fn data_stream(self) -> DataStream {
        DataStream {
            out: std::io::BufWriter::new(anstream::stdout().lock()),
            open: true,
            elements: None,
        }
    }

    /// The command's JSON document. It is printed when the command ends — alone on success, or
    /// as the `data` of the error document on failure — so stdout always holds exactly one
    /// JSON document.
    #[allow(clippy::unused_self)]
    pub fn json(self, value: &impl Serialize) {
        let value = serde_json::to_value(value).expect("JSON output serialises");
        let mut document = DOCUMENT.lock().unwrap_or_else(PoisonError::into_inner);
        debug_assert!(
            matches!(*document, Document::None),
            "a command produced two JSON documents"
        );
        if matches!(*document, Document::None) {
            *document = Document::Pending(value);
        }
    }

    /// The JSON document of a command that keeps running after it (a server announcing where
    /// it listens): printed now. A later failure is reported on stderr only.
    #[allow(clippy::unused_self)]
    pub fn json_now(self, value: &impl Serialize) {
        let mut out = anstream::stdout();
        let text = serde_json::to_string_pretty(value).expect("JSON output serialises");
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
        *DOCUMENT.lock().unwrap_or_else(PoisonError::into_inner) = Document::Printed;
    }

    /// A cargo-style status line on stderr: a right-aligned green verb and a message.
    pub fn status(self, verb: &str, message: impl std::fmt::Display) {
        if self.quiet || self.json {
            return;
        }
        let mut err = anstream::stderr();
        let message = redact_text(&message.to_string());
        let _ = writeln!(err, "{:>12} {message}", verb.green().bold());
    }

    /// A plain informational line on stderr.
    pub fn info(self, message: impl std::fmt::Display) {
        if self.quiet || self.json {
            return;
        }
        let mut err = anstream::stderr();
        let _ = writeln!(err, "{}", redact_text(&message.to_string()));
    }

    /// A warning on stderr (shown unless `--quiet`).
    pub fn warn(self, message: impl std::fmt::Display) {
        if self.quiet {
            return;
        }
        let mut err = anstream::stderr();
        let _ = writeln!(
            err,
            "{} {}",
            "warning:".yellow().bold(),
            redact_text(&message.to_string())
        );
    }

    /// A hint line on stderr.
    pub fn hint(self, message: impl std::fmt::Display) {
        if self.quiet || self.json {
            return;
        }
        let mut err = anstream::stderr();
        let _ = writeln!(
            err,
            "{} {}",
            "hint:".cyan().bold(),
            redact_text(&message.to_string())
        );
    }
}

/// The one JSON document of this process's command.
enum Document {
    None,
    Pending(serde_json::Value),
    Printed,
}

static DOCUMENT: Mutex<Document> = Mutex::new(Document::None);

/// Print the command's JSON document once it has ended: its data on success; on failure the
/// error document, carrying the data produced before the failure as `data`.
pub fn finish_json(error: Option<serde_json::Value>) {
    let document = std::mem::replace(
        &mut *DOCUMENT.lock().unwrap_or_else(PoisonError::into_inner),
        Document::Printed,
    );
    let out = match (document, error) {
        (Document::Printed, _) | (Document::None, None) => return,
        (Document::Pending(data), None) => data,
        (Document::None, Some(error)) => error,
        (Document::Pending(data), Some(mut error)) => {
            if let Some(object) = error.as_object_mut() {
                object.insert("data".to_owned(), data);
            }
            error
        }
    };
    let mut stdout = anstream::stdout();
    let text = serde_json::to_string_pretty(&out).expect("JSON output serialises");
    let _ = writeln!(stdout, "{text}");
}

/// A buffered writer of data lines or of one JSON array ([`Printer::data_stream`]). Once stdout
/// is closed (`| head`), every write returns `false` so the caller can stop reading.
pub struct DataStream<W: std::io::Write = StdoutBuffer> {
    out: W,
    open: bool,
    /// Elements written so far, while a JSON array is open.
    elements: Option<u64>,
}

/// The buffered, colour-aware stdout a [`DataStream`] writes to.
pub type StdoutBuffer = std::io::BufWriter<anstream::AutoStream<std::io::StdoutLock<'static>>>;

impl<W: std::io::Write> DataStream<W> {
    /// One line of data.
    pub fn line(&mut self, line: impl std::fmt::Display) -> bool {
        self.open = self.open && writeln!(self.out, "{line}").is_ok();
        self.open
    }

    /// Open a JSON array; [`DataStream::element`] adds to it, [`DataStream::finish`] closes it.
    /// The bytes equal [`Printer::json`] of the whole list.
    pub fn begin_array(&mut self) -> bool {
        // The streamed array is the command's one JSON document: a later failure goes to
        // stderr only.
        *DOCUMENT.lock().unwrap_or_else(PoisonError::into_inner) = Document::Printed;
        self.elements = Some(0);
        self.open = self.open && write!(self.out, "[").is_ok();
        self.open
    }

    /// One element of the open JSON array, indented as `serde_json`'s pretty printer does.
    pub fn element(&mut self, value: &impl Serialize) -> bool {
        let text = serde_json::to_string_pretty(value).expect("JSON output serialises");
        let separator = if self.elements.unwrap_or(0) == 0 {
            "\n"
        } else {
            ",\n"
        };
        self.elements = self.elements.map(|n| n + 1);
        // String values never hold a raw newline (JSON escapes it), so every line break here
        // is structure and gets one more indent level.
        let indented = text.replace('\n', "\n  ");
        self.open = self.open && write!(self.out, "{separator}  {indented}").is_ok();
        self.open
    }

    /// Close the JSON array if one is open, and flush.
    pub fn finish(mut self) {
        if let Some(elements) = self.elements.take() {
            let close = if elements == 0 { "]\n" } else { "\n]\n" };
            self.open = self.open && write!(self.out, "{close}").is_ok();
        }
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn streamed(values: &[serde_json::Value]) -> String {
        let mut buffer = Vec::new();
        let mut stream = DataStream {
            out: &mut buffer,
            open: true,
            elements: None,
        };
        stream.begin_array();
        for value in values {
            assert!(stream.element(value));
        }
        stream.finish();
        String::from_utf8(buffer).unwrap()
    }

    #[test]
    fn a_streamed_json_array_has_the_bytes_of_the_whole_document() {
        let element = serde_json::json!({
            "blake3": "ab\ncd",
            "locations": [{ "root": "/m", "sizes": [1, 2] }],
            "sources": [],
            "empty": {},
        });
        for values in [
            vec![],
            vec![element.clone()],
            vec![element.clone(), serde_json::json!(3), element],
        ] {
            let whole = serde_json::to_string_pretty(&values).unwrap() + "\n";
            assert_eq!(streamed(&values), whole);
        }
    }
}
