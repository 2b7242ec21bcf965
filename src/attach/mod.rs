//! `pxelab attach URL`: the console of a pxelab running elsewhere (`up --no-tui` on the
//! lab server, in a container), over its admin API.
//!
//! The console here drives a *mirror*: a local engine seeded with the server's node
//! records and fed the server's event stream, so every screen works as it does beside a
//! local engine. Commands (adopt, forget, change, reboot) go back as admin API calls,
//! and the server carries them out. Nothing here writes the lab's files or holds its
//! secrets: the API sends neither.
//!
//! - [`remote`]: requests and the event stream over pinned TLS with the bearer token;
//! - [`link`]: seeding the mirror and keeping it current, reconnecting with backoff;
//! - [`forward`]: the console's commands as admin API requests, answers as replies;
//! - [`cli`]: `pxelab attach` and the `--remote` forms of `nodes`, `adopt`, `forget`,
//!   `reboot`, `reload`.

pub mod cli;
pub mod forward;
pub mod link;
pub mod remote;

pub use remote::Remote;

/// Why attaching failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Not an `https://host:port` URL.
    #[error("`{0}` is not an admin API address like https://192.168.1.10:9443")]
    Url(String),
    /// TLS could not be set up, or the certificate is not the pinned one.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The connection broke or the reply made no sense.
    #[error("admin API at {server}: {why}")]
    Broken {
        /// `host:port`.
        server: String,
        /// What went wrong.
        why: String,
    },
    /// The server refused (wrong token, unknown node, …).
    #[error("admin API at {server} refused (HTTP {status}): {why}")]
    Refused {
        /// `host:port`.
        server: String,
        /// HTTP status.
        status: u16,
        /// The server's words.
        why: String,
    },
}

use crate::http::tls::TlsError;
