//! The CLI's [`Reporter`]: status lines on stderr, progress bars only on a TTY. Programs that
//! draw their own progress (uv) are shown as they draw, between our bars, on a TTY only.

use std::io::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use comfydock_foundation::reporter::Reporter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::Printer;

/// How often a spinner (work of unknown size: a git clone) turns.
const SPINNER_TICK: Duration = Duration::from_millis(120);

/// Shows library progress to a person.
pub struct CliReporter {
    printer: Printer,
    bars: Option<MultiProgress>,
    active: Mutex<Vec<Option<ProgressBar>>>,
}

impl CliReporter {
    pub fn new(printer: Printer) -> Self {
        let bars = printer
            .show_progress()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            printer,
            bars,
            active: Mutex::new(Vec::new()),
        }
    }

    fn println(&self, line: impl FnOnce()) {
        match &self.bars {
            Some(bars) => bars.suspend(line),
            None => line(),
        }
    }
}

impl Reporter for CliReporter {
    fn phase(&self, name: &str) {
        self.println(|| self.printer.status("Phase", name));
    }

    fn status(&self, verb: &str, message: &str) {
        self.println(|| self.printer.status(verb, message));
    }

    fn warning(&self, message: &str) {
        self.println(|| self.printer.warn(message));
    }

    fn start(&self, label: &str, total: Option<u64>) -> usize {
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(if let Some(total) = total {
                ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{msg:>20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                )
            } else {
                ProgressBar::new_spinner()
            });
            if total.is_none() {
                bar.enable_steady_tick(SPINNER_TICK);
            }
            bar.set_message(label.to_owned());
            bar
        });
        let mut active = self.active.lock().expect("reporter lock");
        active.push(bar);
        active.len() - 1
    }

    fn progress(&self, id: usize, done: u64) {
        if let Some(Some(bar)) = self.active.lock().expect("reporter lock").get(id) {
            bar.set_position(done);
        }
    }

    fn finish(&self, id: usize) {
        if let Some(slot) = self.active.lock().expect("reporter lock").get_mut(id)
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }

    fn live(&self) -> bool {
        self.bars.is_some()
    }

    fn terminal_output(&self, bytes: &[u8]) {
        let show = || {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(bytes);
            let _ = err.flush();
        };
        self.println(show);
    }
}
