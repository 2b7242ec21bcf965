//! `.pxelab/fetched.json`: what `pxelab fetch` unpacked (name, size, SHA-256, and the
//! tarball it came from), so `pxelab check` can tell when a served file is no longer the
//! verified one ([`super::drift`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, FetchError};

/// The manifest's file name inside `.pxelab/`.
pub const FILE: &str = "fetched.json";

/// One unpacked file, relative to `assets_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Path relative to `assets_dir` (`vmlinuz-lts`, `dtbs-lts/…`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// What one fetch put into `assets_dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The tarball's URL.
    pub source: String,
    /// The tarball's SHA-256.
    pub source_sha256: String,
    /// The point release, e.g. `3.21.4`.
    pub version: String,
    /// The signer's fingerprint.
    pub signed_by: String,
    /// When (RFC 3339).
    pub fetched_at: String,
    /// The folder, as lab.yaml names it.
    pub assets_dir: PathBuf,
    /// The files.
    pub assets: Vec<Asset>,
}

/// Where the manifest of the lab in `state_dir` lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Reads the manifest, `None` when there is none.
pub fn read(state_dir: &Path) -> Result<Option<Manifest>, FetchError> {
    let p = path(state_dir);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&p)(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| io_err(&p)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// Writes the manifest atomically into `state_dir` (created 0700 if missing).
pub fn write(state_dir: &Path, m: &Manifest) -> Result<(), FetchError> {
    crate::config::atomic::create_private_dir(state_dir).map_err(io_err(state_dir))?;
    let p = path(state_dir);
    let mut text = serde_json::to_string_pretty(m)
        .map_err(|e| io_err(&p)(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    text.push('\n');
    crate::config::atomic::write_atomic(&p, text.as_bytes()).map_err(io_err(&p))
}
