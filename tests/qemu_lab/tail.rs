//! pxelab's JSON event lines, read incrementally from its stdout file while it runs.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use pxelab::engine::event::Event;

/// pxelab's JSON lines, read incrementally from its stdout file.
pub struct EventTail {
    file: std::fs::File,
    pos: u64,
    partial: String,
    /// Every event read so far.
    pub all: Vec<Event>,
    /// Lines that were not events.
    pub bad: Vec<String>,
}

impl EventTail {
    /// Follows `path` from its start.
    pub fn new(path: &Path) -> EventTail {
        EventTail {
            file: std::fs::File::open(path).expect("pxelab stdout"),
            pos: 0,
            partial: String::new(),
            all: Vec::new(),
            bad: Vec::new(),
        }
    }

    /// The events written since the last call.
    pub fn read_new(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        if self.file.seek(SeekFrom::Start(self.pos)).is_err() {
            return out;
        }
        let mut r = BufReader::new(&self.file);
        let mut line = String::new();
        while let Ok(n) = r.read_line(&mut line) {
            if n == 0 {
                break;
            }
            self.pos += n as u64;
            if !line.ends_with('\n') {
                self.partial.push_str(&line);
                line.clear();
                continue;
            }
            let full = format!("{}{}", std::mem::take(&mut self.partial), line.trim_end());
            line.clear();
            match serde_json::from_str::<Event>(&full) {
                Ok(ev) => out.push(ev),
                Err(_) => self.bad.push(full),
            }
        }
        self.all.extend(out.iter().cloned());
        out
    }
}
