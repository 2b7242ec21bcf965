//! The console attached to a pxelab elsewhere (`pxelab attach URL`): what it shows
//! differently from a local one.
//!
//! Everything else is the same console over an engine that mirrors the server (see
//! `crate::attach`). Two things differ: the header names the server and its pinned
//! certificate, so an operator always knows which lab the keys act on; and the
//! user-data of a node is not shown, because it carries the node's secrets and those
//! never leave the server (its iPXE script, command line and meta-data are rendered
//! here from the server's lab, as the server renders them).

use super::fmt::cut;

/// Where the console is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// `https://host:port`.
    pub url: String,
    /// The server certificate's fingerprint (`SHA256:AB:…`).
    pub fingerprint: String,
    /// Whether this attach pinned it (first contact).
    pub first_use: bool,
}

impl Attached {
    /// The header's words: `⇄ https://10.0.0.1:7480 SHA256:AB:CD:EF:01…`.
    pub fn header(&self) -> String {
        format!("⇄ {} {} ", self.url, cut(&self.fingerprint, 22))
    }

    /// The header's words on a narrow terminal, in place of `pxelab`: `⇄ 10.0.0.1:7480 `.
    pub fn header_short(&self) -> String {
        let addr = self.url.strip_prefix("https://").unwrap_or(&self.url);
        format!("⇄ {addr} ")
    }

    /// What the flash line says at start.
    pub fn greeting(&self) -> String {
        if self.first_use {
            format!(
                "attached to {}: first contact, certificate {} pinned (compare with the server's server-up line)",
                self.url, self.fingerprint
            )
        } else {
            format!(
                "attached to {} (certificate {}, as pinned)",
                self.url, self.fingerprint
            )
        }
    }
}

/// What the served-file view shows in place of user-data when attached.
pub const USER_DATA_ON_SERVER: &str = "\
user-data is rendered on the server only: it carries this node's secrets (k3s token,
host key, node password), and no secret crosses the admin API.
On the server: pxelab render <mac or hostname> user-data";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_the_server_and_a_fingerprint_prefix() {
        let a = Attached {
            url: "https://10.0.0.1:7480".into(),
            fingerprint: format!("SHA256:{}", ["AB"; 32].join(":")),
            first_use: true,
        };
        let h = a.header();
        assert!(h.starts_with("⇄ https://10.0.0.1:7480 SHA256:AB:AB"), "{h}");
        assert!(h.chars().count() < 60, "{h}");
        assert!(a.greeting().contains("pinned"));
    }
}
