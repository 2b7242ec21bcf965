//! Download progress: a bar when stderr is a terminal, a plain line per tenth
//! otherwise (logs and CI keep readable text instead of control codes).

use std::io::IsTerminal;

/// Progress of one download.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    name: String,
    total: Option<u64>,
    /// The last tenth printed as a plain line.
    tenth: u64,
}

impl Progress {
    /// Starts reporting `name`, `total` bytes long when known, `start` bytes already
    /// there (a resumed download).
    pub fn new(name: &str, total: Option<u64>, start: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::no_length(),
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(name.to_string());
            bar.set_position(start);
            bar
        });
        if bar.is_none() && start > 0 {
            eprintln!("{name}: resuming at {start} bytes");
        }
        Progress {
            bar,
            name: name.to_string(),
            total,
            tenth: tenth(start, total),
        }
    }

    /// `done` bytes are there now.
    pub fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let t = tenth(done, self.total);
        if t > self.tenth && t < 10 {
            self.tenth = t;
            eprintln!("{}: {}0% ({done} bytes)", self.name, t);
        }
    }

    /// The download ended with `done` bytes.
    pub fn finish(&mut self, done: u64) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{}: {done} bytes", self.name),
        }
    }
}

fn tenth(done: u64, total: Option<u64>) -> u64 {
    match total {
        Some(t) if t > 0 => done.saturating_mul(10) / t,
        _ => 0,
    }
}
