//! The OpenPGP keys a netboot tarball must be signed by.
//!
//! Alpine's release key ships inside the pxelab binary (`keys/alpine/`, fingerprints in
//! the README): a key fetched from the same mirror as the files it vouches for would
//! prove nothing. `--keyring FILE` replaces it (tests, a key rotation before a release).

use std::path::Path;

use pgp::composed::{Deserializable, SignedPublicKey};
use pgp::types::KeyDetails;

use super::FetchError;

/// Natanael Copa's key, which signs Alpine's releases.
pub const ALPINE_KEY_ASC: &str = include_str!("../../keys/alpine/ncopa.asc");

/// Its fingerprint, as Alpine's download page publishes it.
pub const ALPINE_KEY_FINGERPRINT: &str = "0482D84022F52DF1C4E7CD43293ACD0907D9495A";

/// Public keys to verify with, and where they came from (named in refusals).
pub struct Keyring {
    /// The keys.
    pub keys: Vec<SignedPublicKey>,
    /// `shipped Alpine key` or the file's path.
    pub name: String,
}

impl Keyring {
    /// The keys shipped with pxelab for Alpine.
    pub fn alpine() -> Result<Keyring, FetchError> {
        Keyring::parse(ALPINE_KEY_ASC, "shipped Alpine key")
    }

    /// Reads an armored keyring file (one or more public keys).
    pub fn from_file(path: &Path) -> Result<Keyring, FetchError> {
        let text = std::fs::read_to_string(path).map_err(super::io_err(path))?;
        Keyring::parse(&text, &path.display().to_string())
    }

    /// Parses armored keys; a keyring without a key is refused.
    pub fn parse(armored: &str, name: &str) -> Result<Keyring, FetchError> {
        let err = |message: String| FetchError::Pgp {
            what: format!("keyring {name}"),
            message,
        };
        let (keys, _) =
            SignedPublicKey::from_armor_many(armored.as_bytes()).map_err(|e| err(e.to_string()))?;
        let keys: Vec<SignedPublicKey> = keys
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        if keys.is_empty() {
            return Err(err("no public key in it".to_string()));
        }
        for k in &keys {
            k.verify_bindings()
                .map_err(|e| err(format!("key {}: {e}", fingerprint(k))))?;
        }
        Ok(Keyring {
            keys,
            name: name.to_string(),
        })
    }

    /// The primary keys' fingerprints (uppercase hex, no spaces).
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys.iter().map(fingerprint).collect()
    }
}

/// A key's fingerprint as uppercase hex.
pub fn fingerprint(k: &SignedPublicKey) -> String {
    format!("{:X}", k.primary_key.fingerprint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_key_is_alpines_release_key() {
        let ring = Keyring::alpine().unwrap();
        assert_eq!(
            ring.fingerprints(),
            vec![ALPINE_KEY_FINGERPRINT.to_string()]
        );
    }

    #[test]
    fn refuses_a_keyring_without_keys() {
        let err = Keyring::parse("not a key", "x").err().unwrap().to_string();
        assert!(err.starts_with("keyring x:"), "{err}");
    }
}
