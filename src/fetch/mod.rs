//! `pxelab fetch alpine v3.21 x86_64 lts`: downloads Alpine's netboot tarball, proves
//! it is the one Alpine published (SHA-256 and an OpenPGP signature by a key shipped
//! with pxelab), unpacks kernel, initramfs, modloop (and dtbs on aarch64) into
//! `boot.assets_dir` and points lab.yaml at them.
//!
//! Operators used to fetch these files by hand and skip the verification; the boot
//! files run as root on every node, so the command refuses, naming the reason, before
//! anything reaches `assets_dir`. Steps, one module each:
//! [`mirror`] (where the files are), [`download`] (resumable HTTP), [`verify`] and
//! [`keyring`] (checksum and signature), [`unpack`] (staging, then rename into place),
//! [`manifest`] (what was unpacked, for [`drift`] in `pxelab check`), [`progress`].
//!
//! Not for the engine: this is an operator's command at the edge, with files and sockets.

pub mod download;
pub mod drift;
pub mod keyring;
pub mod manifest;
pub mod mirror;
pub mod progress;
pub mod unpack;
pub mod verify;

mod run;

use std::path::PathBuf;

pub use run::{run, Fetched};

/// Alpine's mirror when neither `--mirror` nor `PXELAB_MIRROR` says otherwise.
pub const DEFAULT_MIRROR: &str = "https://dl-cdn.alpinelinux.org/alpine";

/// Which distribution to fetch (only Alpine publishes what pxelab boots today).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Distro {
    /// Alpine Linux netboot files.
    Alpine,
}

/// `pxelab fetch`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct FetchArgs {
    /// The distribution.
    #[arg(value_enum)]
    pub distro: Distro,
    /// The release branch, e.g. v3.21 (the latest point release of it is fetched).
    pub release: String,
    /// The architecture, e.g. x86_64 or aarch64.
    pub arch: String,
    /// The kernel flavour, e.g. lts or virt.
    pub flavour: String,
    /// The mirror's base URL (the folder holding v3.21/, edge/, …).
    #[arg(long, env = "PXELAB_MIRROR", default_value = DEFAULT_MIRROR)]
    pub mirror: String,
    /// An armored OpenPGP keyring to verify the signature with, instead of the
    /// Alpine key shipped with pxelab.
    #[arg(long, value_name = "FILE", env = "PXELAB_FETCH_KEYRING")]
    pub keyring: Option<PathBuf>,
}

/// Why a fetch was refused. Every variant names what it checked and what it found.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// lab.yaml could not be read, parsed or edited.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}")]
    Http {
        /// What was asked for.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The request failed below HTTP (DNS, connection, TLS, timeout).
    #[error("{url}: {message}")]
    Transport {
        /// What was asked for.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// The download ended before its announced size; run again to resume it.
    #[error(
        "{url}: download truncated: got {got} of {expected} bytes (kept; run again to resume)"
    )]
    Truncated {
        /// What was downloaded.
        url: String,
        /// Bytes received so far.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The mirror's release index is missing what was asked for, or unreadable.
    #[error("{url}: {message}")]
    Index {
        /// The index.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The file's SHA-256 is not the published one.
    #[error("{file}: bad checksum: expected sha256 {expected}, got {got}")]
    Checksum {
        /// The file.
        file: String,
        /// Published.
        expected: String,
        /// Computed.
        got: String,
    },
    /// The signature does not verify with the key that made it.
    #[error("{file}: bad signature (key {key_id}): {message}")]
    BadSignature {
        /// The signed file.
        file: String,
        /// The signing key's id.
        key_id: String,
        /// Why it failed.
        message: String,
    },
    /// The signature was made by a key that is not in the keyring.
    #[error("{file}: signed by key {key_id}, which is not in the keyring ({keyring})")]
    WrongKey {
        /// The signed file.
        file: String,
        /// The issuer named by the signature.
        key_id: String,
        /// The keyring's name.
        keyring: String,
    },
    /// The keyring or the signature could not be read.
    #[error("{what}: {message}")]
    Pgp {
        /// The keyring or signature.
        what: String,
        /// Why.
        message: String,
    },
    /// The tarball lacks a wanted file or holds an unsafe one.
    #[error("{file}: {message}")]
    Unpack {
        /// The tarball.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// An I/O error with the path it concerns.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}
