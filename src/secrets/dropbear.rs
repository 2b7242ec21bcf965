//! dropbear's own host key file format, for roles with `ssh.server: dropbear`.
//!
//! dropbear (Alpine's small sshd) cannot load an OpenSSH private key (`dropbear -r` on
//! one fails with "String too long"), and converting at boot needs `dropbearconvert`,
//! which Alpine's dropbear package does not run. So pxelab delivers the node's pinned
//! key already in the format `dropbear -r` reads: an SSH-wire buffer as written by
//! dropbear's `buf_put_ed25519_priv_key` (ed25519.c), 83 bytes for ed25519:
//!
//! ```text
//! uint32 11, "ssh-ed25519"         key type as an SSH string
//! uint32 64                        length of what follows
//! byte[32] private seed            (RFC 8032 secret key)
//! byte[32] public key
//! ```
//!
//! `dropbearkey -y -f FILE` prints the public key and fingerprint of such a file; they
//! are the ones `ssh-keygen -lf` prints for the OpenSSH public key of the same node.

/// The SSH key type name of ed25519 keys.
const ED25519: &[u8] = b"ssh-ed25519";

/// Bytes in a dropbear ed25519 key file.
pub const ED25519_FILE_LEN: usize = 4 + ED25519.len() + 4 + 64;

/// How every base64-encoded dropbear ed25519 private key file begins: the key type and
/// the length 64 (`…AAAAQ`; a public key blob has 32 there, `…AAAAI`). Lets the screens
/// recognise such a key even where pxelab did not put it (see `tui::served`).
pub const ED25519_B64_PREFIX: &str = "AAAAC3NzaC1lZDI1NTE5AAAAQ";

/// dropbear's key file for the ed25519 key with private `seed` and `public` key.
pub fn encode_ed25519(seed: &[u8; 32], public: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ED25519_FILE_LEN);
    out.extend_from_slice(&(ED25519.len() as u32).to_be_bytes());
    out.extend_from_slice(ED25519);
    out.extend_from_slice(&64u32.to_be_bytes());
    out.extend_from_slice(seed);
    out.extend_from_slice(public);
    out
}

/// The private seed and public key of a dropbear ed25519 key file; `None` for anything
/// else (another key type, a truncated or padded file).
pub fn decode_ed25519(file: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    if file.len() != ED25519_FILE_LEN {
        return None;
    }
    let (len, rest) = file.split_at(4);
    let (name, rest) = rest.split_at(ED25519.len());
    let (inner, rest) = rest.split_at(4);
    if len != (ED25519.len() as u32).to_be_bytes()
        || name != ED25519
        || inner != 64u32.to_be_bytes()
    {
        return None;
    }
    let (seed, public) = rest.split_at(32);
    Some((seed.try_into().ok()?, public.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use russh::keys::ssh_key::private::Ed25519Keypair;

    fn unhex(s: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        v.try_into().unwrap()
    }

    /// RFC 8032 §7.1, test 1: a secret key whose public key is published.
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn encodes_the_rfc8032_key_as_dropbear_writes_it() {
        let seed = unhex(SEED);
        let public = unhex(PUBLIC);
        // The key library derives the same public key from the seed.
        assert_eq!(Ed25519Keypair::from_seed(&seed).public.0, public);
        let file = encode_ed25519(&seed, &public);
        assert_eq!(file.len(), 83);
        assert_eq!(&file[..19], b"\0\0\0\x0bssh-ed25519\0\0\0\x40");
        assert_eq!(&file[19..51], &seed);
        assert_eq!(&file[51..], &public);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&file);
        assert!(b64.starts_with(ED25519_B64_PREFIX), "{b64}");
        // Its public half, as an OpenSSH public key, is the one `dropbearkey -y` prints.
        let mut blob = b"\0\0\0\x0bssh-ed25519\0\0\0\x20".to_vec();
        blob.extend_from_slice(&public);
        let public_b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
        assert_eq!(
            public_b64,
            "AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea"
        );
        assert!(!public_b64.starts_with(ED25519_B64_PREFIX));
    }

    #[test]
    fn decodes_what_it_encodes_and_nothing_else() {
        let (seed, public) = (unhex(SEED), unhex(PUBLIC));
        let file = encode_ed25519(&seed, &public);
        assert_eq!(decode_ed25519(&file), Some((seed, public)));
        assert_eq!(decode_ed25519(&file[..82]), None);
        let mut other = file.clone();
        other[4] = b'x';
        assert_eq!(decode_ed25519(&other), None);
        let mut long = file;
        long.push(0);
        assert_eq!(decode_ed25519(&long), None);
    }
}
