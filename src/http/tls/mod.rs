//! TLS for an admin API that listens beyond loopback (`pxelab attach`).
//!
//! The admin API stays plain HTTP on loopback, where only this machine's users can
//! reach it and the bearer token keeps them honest. Bound to another address it would
//! carry the token and the lab's state across a network, so it then speaks TLS only,
//! with a certificate pxelab makes for itself ([`cert`]). There is no CA a homelab could
//! use for that, so the client pins the certificate by its SHA-256 fingerprint on first
//! attach and refuses a changed one after, as SSH does with host keys ([`pin`]).
//!
//! rustls with the ring provider (no OpenSSL, no C toolchain beyond what ring needs,
//! and the same provider russh and the fetch client use); rcgen makes the certificate.

pub mod cert;
pub mod pin;
pub mod serve;

use std::path::PathBuf;

pub use cert::AdminCert;
pub use pin::{KnownServers, PinCheck};

/// Why TLS could not be set up, or a server could not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A certificate or key file is not what pxelab wrote.
    #[error("{path}: {why}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Making the certificate failed.
    #[error("making the admin API's certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The server presented another certificate than the one pinned for it.
    #[error(
        "the admin API at {server} presented a certificate with fingerprint {presented}, \
         but {pinned} is pinned for it in {file} (line {line}): if its `.pxelab/admin-tls.crt` \
         was made anew on purpose, delete that line and attach again"
    )]
    Changed {
        /// `host:port`.
        server: String,
        /// The fingerprint presented.
        presented: String,
        /// The fingerprint pinned.
        pinned: String,
        /// The known-servers file.
        file: PathBuf,
        /// Its line.
        line: usize,
    },
}

/// The SHA-256 fingerprint of a DER certificate, as `SHA256:` and colon-separated hex
/// (the form `openssl x509 -fingerprint -sha256` prints, so an operator can compare).
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("SHA256:{}", hex.join(":"))
}

/// The rustls provider pxelab uses everywhere.
///
/// rustls 0.23.48 deprecates its ring provider for lacking post-quantum key exchange.
/// The alternative (aws-lc-rs) builds a large C library on every fresh machine; the admin
/// API's traffic is a lab's state on its own segment, pinned per certificate. Revisit
/// when ring gains ML-KEM or aws-lc-rs builds without a C toolchain.
#[allow(deprecated)]
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
