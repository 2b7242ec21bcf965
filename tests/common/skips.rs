//! Skips nobody can miss.
//!
//! A test that lacks a requirement outside CI skips (see [`super::require`]). libtest
//! captures `eprintln!` of passing tests, so a skip printed that way is never seen: the
//! test shows `ok` and a feature goes untested unnoticed. So a skip is
//!
//! 1. written straight to the process's stderr ([`say`]: `std::io::stderr()` is not
//!    captured, only the print macros are), naming the package that would un-skip it;
//! 2. appended to [`summary_file`] (`target/tmp/pxelab-skips.txt`), one line per skip,
//!    which tests/zz_skip_summary.rs (cargo runs integration test binaries in name
//!    order, so last) prints as one list with the `apt-get install` that un-skips it.
//!
//! Which skips belong to *this* run: every line starts with a run key, the pid of the
//! test binary's parent process (the `cargo test` that runs all the binaries of one run)
//! and that process's start time (so a reused pid is not the same run). The summary
//! shows only the lines of its own run, and drops the others from the file. So a
//! summary cannot list skips of an earlier run, whatever was run in between; a binary run
//! by hand (parent: a shell) is a run of its own. If a test fails, cargo stops before the
//! summary; the skips were printed as they happened.

use std::io::Write;
use std::path::PathBuf;

/// The file skips are appended to.
pub fn summary_file() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pxelab-skips.txt")
}

/// Identifies the `cargo test` invocation this process belongs to.
pub fn run_key() -> String {
    let ppid = std::os::unix::process::parent_id();
    // Field 22 of /proc/PID/stat is the start time; the command name (field 2) is in
    // parentheses and may hold spaces, so count from the closing one.
    let start = std::fs::read_to_string(format!("/proc/{ppid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            rest.split_whitespace().nth(19).map(str::to_string)
        })
        .unwrap_or_default();
    format!("{ppid}@{start}")
}

/// Writes `text` to the real stderr, past libtest's capture.
pub fn say(text: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes());
    let _ = e.flush();
}

/// One recorded skip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// Test binary (`tftp_clients`).
    pub binary: String,
    /// Test function (`tftp_hpa_curl_and_atftp_fetch_byte_identical`).
    pub test: String,
    /// What was missing (`` `atftp` installed ``, `root (network namespaces)`).
    pub what: String,
    /// The Debian package that provides it, when a package does.
    pub package: Option<String>,
    /// How to un-skip it (`apt-get install atftp`, `run as root`).
    pub remedy: String,
}

impl Skip {
    /// `binary::test`.
    pub fn name(&self) -> String {
        format!("{}::{}", self.binary, self.test)
    }
}

/// This test binary's name without cargo's hash suffix.
fn binary_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_ref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}

/// Records a skip of the running test, which needs `what` (from Debian `package`, if
/// one provides it; `remedy` says how to get it): says so now and appends it to the
/// summary file.
pub fn record(what: &str, package: Option<&str>, remedy: &str) {
    let thread = std::thread::current();
    let skip = Skip {
        binary: binary_name(),
        test: thread.name().unwrap_or("?").to_string(),
        what: what.to_string(),
        package: package.map(str::to_string),
        remedy: remedy.to_string(),
    };
    say(&format!(
        "SKIP {}: needs {}: {} (PXELAB_CI=1 makes this a failure)\n",
        skip.name(),
        skip.what,
        skip.remedy
    ));
    let field = |s: &str| s.replace(['\t', '\n'], " ");
    let line = format!(
        "{}\t{}\t{}\t{}\t{}\t{}\n",
        run_key(),
        skip.binary,
        field(&skip.test),
        field(&skip.what),
        skip.package.as_deref().unwrap_or(""),
        field(&skip.remedy)
    );
    let file = summary_file();
    let _ = std::fs::create_dir_all(file.parent().unwrap_or(&file));
    // One write of one short line to a file opened for appending: lines of tests
    // running in parallel do not interleave.
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// The skips recorded by the run this process belongs to, in the order they happened;
/// lines of other runs are dropped from the file.
pub fn this_run() -> Vec<Skip> {
    let file = summary_file();
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let key = run_key();
    let mut mine = Vec::new();
    let mut kept = String::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 || f[0] != key {
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
        mine.push(Skip {
            binary: f[1].to_string(),
            test: f[2].to_string(),
            what: f[3].to_string(),
            package: Some(f[4].to_string()).filter(|p| !p.is_empty()),
            remedy: f[5].to_string(),
        });
    }
    if kept.len() != text.len() {
        let _ = std::fs::write(&file, kept);
    }
    mine
}
