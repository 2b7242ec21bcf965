//! Host key trust: which key a node's sshd must show before pxelab logs in.
//!
//! `ssh.host_keys` in lab.yaml:
//! - `pinned` (default): the per-node key pxelab derived and delivered in user-data.
//! - `tofu`: the first key seen during a boot; another key later in that boot is refused.
//! - anything else: a known_hosts file (relative to lab.yaml), checked for
//!   `[addr]:port` (or `addr` on port 22).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};

use crate::engine::lock;

/// How a node's host key is checked.
#[derive(Clone)]
pub enum Trust {
    /// Exactly this key.
    Pinned(PublicKey),
    /// The first key seen this boot (shared across reconnects of one boot).
    Tofu(Arc<Mutex<Option<PublicKey>>>),
    /// A known_hosts file.
    KnownHosts {
        /// The file.
        path: PathBuf,
        /// Host as written in the file (the node's address).
        host: String,
        /// SSH port.
        port: u16,
    },
}

/// What the check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is the expected one.
    Trusted,
    /// Another key: not trusted.
    Mismatch {
        /// What was expected (fingerprint or a description).
        expected: String,
        /// Fingerprint of what was shown.
        seen: String,
    },
}

/// `SHA256:…` of a key.
pub fn fingerprint(k: &PublicKey) -> String {
    k.fingerprint(HashAlg::Sha256).to_string()
}

impl Trust {
    /// Checks a key shown by the node.
    pub fn check(&self, shown: &PublicKeyOrCertificate) -> Verdict {
        let key = match shown {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            PublicKeyOrCertificate::Certificate(c) => {
                return Verdict::Mismatch {
                    expected: self.expected(),
                    seen: format!("a {} certificate", c.algorithm()),
                }
            }
        };
        let seen = fingerprint(key);
        match self {
            Trust::Pinned(want) if want.key_data() == key.key_data() => Verdict::Trusted,
            Trust::Pinned(want) => Verdict::Mismatch {
                expected: fingerprint(want),
                seen,
            },
            Trust::Tofu(first) => {
                let mut g = lock(first);
                match g.as_ref() {
                    None => {
                        *g = Some(key.clone());
                        Verdict::Trusted
                    }
                    Some(k) if k.key_data() == key.key_data() => Verdict::Trusted,
                    Some(k) => Verdict::Mismatch {
                        expected: fingerprint(k),
                        seen,
                    },
                }
            }
            Trust::KnownHosts { path, host, port } => {
                match russh::keys::check_known_hosts_path(host, *port, key, path) {
                    Ok(true) => Verdict::Trusted,
                    Ok(false) => Verdict::Mismatch {
                        expected: format!("a key listed in {}", path.display()),
                        seen,
                    },
                    Err(e) => Verdict::Mismatch {
                        expected: format!("the key in {} ({e})", path.display()),
                        seen,
                    },
                }
            }
        }
    }

    fn expected(&self) -> String {
        match self {
            Trust::Pinned(k) => fingerprint(k),
            Trust::Tofu(first) => lock(first)
                .as_ref()
                .map(fingerprint)
                .unwrap_or_else(|| "a plain host key".into()),
            Trust::KnownHosts { path, .. } => format!("a key listed in {}", path.display()),
        }
    }
}

/// The russh client handler: checks the host key and remembers the verdict.
pub struct Client {
    /// The policy.
    pub trust: Trust,
    /// Set by the check (read after a failed connect to tell a mismatch from an error).
    pub verdict: Arc<Mutex<Option<Verdict>>>,
}

impl russh::client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let v = self.trust.check(server_public_key);
        let ok = v == Verdict::Trusted;
        *lock(&self.verdict) = Some(v);
        Ok(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    use russh::keys::PrivateKey;

    fn key(seed: u8) -> PublicKey {
        PrivateKey::new(
            KeypairData::Ed25519(Ed25519Keypair::from_seed(&[seed; 32])),
            "",
        )
        .unwrap()
        .public_key()
        .clone()
    }

    fn shown(k: &PublicKey) -> PublicKeyOrCertificate {
        PublicKeyOrCertificate::PublicKey {
            key: k.clone(),
            hash_alg: None,
        }
    }

    #[test]
    fn pinned_accepts_only_its_key() {
        let t = Trust::Pinned(key(1));
        assert_eq!(t.check(&shown(&key(1))), Verdict::Trusted);
        assert_eq!(
            t.check(&shown(&key(2))),
            Verdict::Mismatch {
                expected: fingerprint(&key(1)),
                seen: fingerprint(&key(2))
            }
        );
    }

    #[test]
    fn tofu_keeps_the_first_key() {
        let t = Trust::Tofu(Arc::new(Mutex::new(None)));
        assert_eq!(t.check(&shown(&key(3))), Verdict::Trusted);
        assert_eq!(t.check(&shown(&key(3))), Verdict::Trusted);
        assert!(matches!(t.check(&shown(&key(4))), Verdict::Mismatch { .. }));
    }

    #[test]
    fn known_hosts_file() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("known_hosts");
        let line = format!("[10.0.0.5]:2222 {}\n", key(5).to_openssh().unwrap());
        std::fs::write(&path, line).unwrap();
        let t = |host: &str| Trust::KnownHosts {
            path: path.clone(),
            host: host.into(),
            port: 2222,
        };
        assert_eq!(t("10.0.0.5").check(&shown(&key(5))), Verdict::Trusted);
        assert!(matches!(
            t("10.0.0.5").check(&shown(&key(6))),
            Verdict::Mismatch { .. }
        ));
        assert!(matches!(
            t("10.0.0.6").check(&shown(&key(5))),
            Verdict::Mismatch { .. }
        ));
    }
}
