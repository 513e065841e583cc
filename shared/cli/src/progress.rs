//! Progress bars for long phases (indicatif), one per phase.

use std::collections::HashMap;
use std::sync::Mutex;

use deskshift_core::job::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    pub fn new() -> Self {
        Bars {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: &str, total: Option<u64>) {
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let bar = self.multi.add(bar);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_string());
        self.bars.lock().unwrap().insert(phase.to_string(), bar);
    }

    fn advance(&self, phase: &str, n: u64) {
        if let Some(b) = self.bars.lock().unwrap().get(phase) {
            b.inc(n);
        }
    }

    fn finish(&self, phase: &str, summary: &str) {
        if let Some(b) = self.bars.lock().unwrap().remove(phase) {
            b.finish_with_message(summary.to_string());
        }
    }
}
