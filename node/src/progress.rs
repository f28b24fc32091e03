//! Progress bars for put and get: bytes, MB/s and ETA on stderr, only when
//! stderr is a terminal and the output is not JSON. The library only bumps
//! a counter; a small thread here turns it into a bar.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A running progress display (or none), fed by [`Progress::counter`].
pub struct Progress {
    counter: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Whether a bar should be drawn: stderr is a terminal and not `--json`.
pub fn wanted(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

impl Progress {
    /// Start a bar for `total` bytes (a spinner when unknown) if `enabled`.
    pub fn start(what: &str, total: Option<u64>, enabled: bool) -> Self {
        Self::start_counting(what, total, None, Arc::new(AtomicU64::new(0)), enabled)
    }

    /// Like [`Progress::start`] for many files: the bar also shows
    /// `files` done of `total_files` (0: not known yet).
    pub fn start_files(
        what: &str,
        total: Option<u64>,
        (files, total_files): (Arc<AtomicU64>, u64),
        bytes: Arc<AtomicU64>,
        enabled: bool,
    ) -> Self {
        Self::start_counting(what, total, Some((files, total_files)), bytes, enabled)
    }

    fn start_counting(
        what: &str,
        total: Option<u64>,
        files: Option<(Arc<AtomicU64>, u64)>,
        counter: Arc<AtomicU64>,
        enabled: bool,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = enabled.then(|| {
            let bar = match total {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            } else {
                "{msg} {spinner} {bytes} {binary_bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(what.to_string());
            let (counter, stop, what) = (counter.clone(), stop.clone(), what.to_string());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    bar.set_position(counter.load(Ordering::Relaxed));
                    if let Some((done, all)) = &files {
                        let done = done.load(Ordering::Relaxed);
                        bar.set_message(match all {
                            0 => format!("{what}: {done} files"),
                            _ => format!("{what}: {done}/{all} files"),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                bar.set_position(counter.load(Ordering::Relaxed));
                bar.finish_and_clear();
            })
        });
        Progress {
            counter,
            stop,
            thread,
        }
    }

    /// The counter to hand to the library.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.counter.clone()
    }

    /// Stop and clear the bar.
    pub fn finish(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_thread();
    }
}
