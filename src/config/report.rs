//! Collecting validation problems with their place in lab.yaml: one helper for the
//! plan builder and the validator, so every message reads `path:line:col: error:
//! dhcp.range: …` the same way whichever check found it.

use std::path::Path;

use super::spans::{Seg, Spans};
use super::{Location, Problem, Severity};

/// `nodes[3].mac` style name of a path.
pub fn path_name(path: &[Seg<'_>]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Problems found in one lab.yaml text, each located through its spans.
pub struct Reporter<'a> {
    /// The file the problems are in.
    pub path: &'a Path,
    /// Where each value is.
    pub spans: &'a Spans,
    /// What was found so far.
    pub problems: Vec<Problem>,
}

impl<'a> Reporter<'a> {
    /// An empty report for `path`.
    pub fn new(path: &'a Path, spans: &'a Spans) -> Reporter<'a> {
        Reporter {
            path,
            spans,
            problems: Vec::new(),
        }
    }

    /// Where a value (or, with `key`, its key) is.
    pub fn at(&self, path: &[Seg<'_>], key: bool) -> Location {
        let (line, column) = if key {
            self.spans.locate_key(path)
        } else {
            self.spans.locate(path)
        };
        Location {
            path: self.path.to_path_buf(),
            line,
            column,
        }
    }

    /// Adds a problem at `path`, its message prefixed with the path's name.
    pub fn push(&mut self, severity: Severity, path: &[Seg<'_>], key: bool, msg: String) {
        let location = Some(self.at(path, key));
        self.problems.push(Problem {
            severity,
            location,
            message: format!("{}: {msg}", path_name(path)),
        });
    }

    /// An error at a value.
    pub fn error(&mut self, path: &[Seg<'_>], msg: String) {
        self.push(Severity::Error, path, false, msg);
    }

    /// An error at a key.
    pub fn error_key(&mut self, path: &[Seg<'_>], msg: String) {
        self.push(Severity::Error, path, true, msg);
    }

    /// A warning at a value.
    pub fn warn(&mut self, path: &[Seg<'_>], msg: String) {
        self.push(Severity::Warning, path, false, msg);
    }
}
