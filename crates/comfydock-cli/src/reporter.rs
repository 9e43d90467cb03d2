//! The CLI's [`Reporter`]: status lines on stderr, progress bars only on a TTY.

use std::sync::Mutex;

use comfydock_foundation::reporter::Reporter;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::printer::Printer;

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
            let bar = match total {
                Some(total) => ProgressBar::new(total).with_style(
                    ProgressStyle::with_template(
                        "{msg:>20} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner(),
            };
            let bar = bars.add(bar);
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
}
