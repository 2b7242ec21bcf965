//! `pxelab check`'s warning when a boot asset is no longer what `pxelab fetch`
//! verified: a file edited, replaced by hand or damaged on disk after its signature was
//! checked would otherwise be served to every node without a word.

use crate::config::{Lab, Problem, Severity};

use super::manifest;

/// One warning per asset that differs (size or SHA-256) from `.pxelab/fetched.json`,
/// or is gone. Nothing when the lab has no manifest or it is for another folder.
pub fn problems(lab: &Lab) -> Vec<Problem> {
    let warn = |message: String| Problem {
        severity: Severity::Warning,
        location: None,
        message,
    };
    let m = match manifest::read(&lab.state_dir()) {
        Ok(Some(m)) => m,
        Ok(None) => return Vec::new(),
        Err(e) => {
            return vec![warn(format!(
                "cannot read what `pxelab fetch` recorded: {e}"
            ))]
        }
    };
    if lab.resolve(&m.assets_dir) != lab.assets_dir() {
        return Vec::new();
    }
    let dir = lab.assets_dir();
    let mut out = Vec::new();
    for a in &m.assets {
        let p = dir.join(&a.name);
        let now = match std::fs::metadata(&p) {
            Ok(md) if md.len() != a.size => format!("now {} bytes", md.len()),
            Ok(_) => match super::verify::sha256_file(&p) {
                Ok(h) if h == a.sha256 => continue,
                Ok(h) => format!("now sha256 {h}"),
                Err(e) => format!("unreadable: {e}"),
            },
            Err(e) => format!("unreadable: {e}"),
        };
        out.push(warn(format!(
            "boot asset {} differs from what `pxelab fetch` verified ({} bytes, sha256 {}): {now}; run `pxelab fetch` again",
            p.display(),
            a.size,
            a.sha256
        )));
    }
    out
}
