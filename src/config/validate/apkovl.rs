//! `apkovl=` on the kernel command line beside the `ds=nocloud;s=…` pxelab appends.
//!
//! Why: Alpine's init installs and enables tiny-cloud only when there is no apkovl, or
//! the apkovl holds `etc/.default_boot_services` (field notes §4). Otherwise the node
//! boots, fetches its modloop, and tiny-cloud never asks for its user-data: no user, no
//! keys, no k3s, and nothing in any log says why (the seed's `apkovl=` lost hours).
//!
//! When the overlay is one of the lab's own assets, it is opened and the answer is
//! known: without the marker this is an error. An overlay pxelab cannot see (another
//! server's URL) is a warning naming the marker to check for.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::Validator;
use crate::config::Severity;

/// The file that makes Alpine's init start the default boot services (tiny-cloud among
/// them) even with an apkovl.
const MARKER: &str = "etc/.default_boot_services";

/// Most tar entries looked at: an overlay is a few files; a huge archive is not read
/// to its end.
const MAX_ENTRIES: usize = 100_000;

/// Whether the gzip'd tar at `path` holds [`MARKER`]; `None` when it cannot be read.
fn has_marker(path: &Path) -> Option<bool> {
    let f = std::fs::File::open(path).ok()?;
    let gz = flate2::read::GzDecoder::new(f.take(1 << 30));
    let mut ar = tar::Archive::new(gz);
    for entry in ar.entries().ok()?.take(MAX_ENTRIES) {
        let entry = entry.ok()?;
        let p = entry.path().ok()?;
        let p = p.to_string_lossy();
        if p.trim_start_matches("./") == MARKER {
            return Some(true);
        }
    }
    Some(false)
}

/// What was learnt of each overlay (by file name) during one validation.
#[derive(Debug, Default)]
pub(super) struct Seen(HashMap<String, Option<bool>>);

impl Validator<'_> {
    /// The problem with a rendered command line's `apkovl=`, if any.
    pub(super) fn apkovl_problem(&mut self, cmdline: &str) -> Option<(Severity, String)> {
        let url = cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("apkovl="))?;
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .unwrap_or("");
        let lab = self.lab;
        let ours = !name.is_empty() && lab.file.boot.extra.iter().any(|e| e == name);
        let dir = lab.assets_dir();
        let known = if ours {
            *self
                .apkovls
                .0
                .entry(name.to_string())
                .or_insert_with(|| has_marker(&dir.join(name)))
        } else {
            None
        };
        match known {
            Some(true) => None,
            Some(false) => Some((
                Severity::Error,
                format!(
                    "apkovl={url}: {} has no {MARKER}, so Alpine's init never starts tiny-cloud and the ds=nocloud pxelab appends is ignored (no user, keys or k3s); remove apkovl= or add {MARKER} to the overlay",
                    dir.join(name).display()
                ),
            )),
            None => Some((
                Severity::Warning,
                format!(
                    "apkovl={url} beside the ds=nocloud pxelab appends: Alpine's init starts tiny-cloud only if that overlay holds {MARKER}; without it no user-data is ever fetched. Remove apkovl= (user-data can write the same files), or make sure the overlay has that file"
                ),
            )),
        }
    }
}
