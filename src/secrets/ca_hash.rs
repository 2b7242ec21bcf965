//! The CA hash of a k3s secure token (`K10<hash>::server:<secret>`), computed exactly as
//! k3s computes it, so an agent given pxelab's token verifies the server it joins.
//!
//! Source: k3s `pkg/clientaccess/token.go`, `hashCA` (and `FormatTokenBytes`, which makes
//! the server's `node-token`). The bundle is what the server serves at `/cacerts`, the
//! content of `server/tls/server-ca.crt`:
//! - one certificate: SHA-256 over the literal bytes of the bundle (PEM as on disk,
//!   whitespace included): the "legacy" hash of a self-signed cluster CA, which is what
//!   pxelab's own CA gives;
//! - more than one: SHA-256 of the DER of the root that signs the first certificate
//!   (chained through the other certificates of the bundle), so the CA can be renewed
//!   under the same root. When no chain to a root in the bundle is found, k3s falls back
//!   to hashing the literal bytes, and so does this.
//!
//! Hex, lower case. k3s chains by verifying signatures; here the chain is followed by
//! issuer and subject names, which is the same for any bundle a CA tool writes.

use sha2::{Digest, Sha256};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Why a bundle has no hash (k3s refuses such a bundle too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// No certificate could be read from the bundle.
    #[error("the CA bundle holds no PEM certificate")]
    NoCertificate,
    /// A PEM block is damaged.
    #[error("the CA bundle does not parse as PEM: {0}")]
    Pem(String),
}

/// The token prefix of k3s's secure format.
pub const TOKEN_PREFIX: &str = "K10";

/// The k3s CA hash of `bundle` (see the module doc).
pub fn ca_hash(bundle: &[u8]) -> Result<String, HashError> {
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(bundle) {
        certs.push(c.map_err(|e| HashError::Pem(e.to_string()))?);
    }
    if certs.is_empty() {
        return Err(HashError::NoCertificate);
    }
    let hashed: &[u8] = if certs.len() > 1 {
        root_of_first(&certs).unwrap_or(bundle)
    } else {
        bundle
    };
    Ok(hex(&Sha256::digest(hashed)))
}

/// The secure token `K10<hash of server_ca>::server:<secret>`; a token already in that
/// form is returned as it is.
pub fn secure_token(server_ca_pem: &[u8], secret: &str) -> Result<String, HashError> {
    if secret.starts_with(TOKEN_PREFIX) && secret.contains("::") {
        return Ok(secret.to_string());
    }
    let creds = if secret.contains(':') {
        secret.to_string()
    } else {
        format!("server:{secret}")
    };
    Ok(format!(
        "{TOKEN_PREFIX}{}::{creds}",
        ca_hash(server_ca_pem)?
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The DER of the root (self-issued, among the bundle's other certificates) that the
/// first certificate chains to; `None` when the chain does not end at one.
fn root_of_first<'a>(certs: &'a [CertificateDer<'a>]) -> Option<&'a [u8]> {
    let names: Vec<(&[u8], &[u8])> = certs
        .iter()
        .map(|c| issuer_subject(c.as_ref()))
        .collect::<Option<_>>()?;
    let mut current = 0usize;
    // A chain longer than the bundle loops: give up as k3s's verification would.
    for _ in 0..certs.len() {
        let issuer = names[current].0;
        let next = (1..certs.len()).find(|&j| j != current && names[j].1 == issuer)?;
        if names[next].0 == names[next].1 {
            return Some(certs[next].as_ref());
        }
        current = next;
    }
    None
}

/// One DER element: (tag, content, rest after it).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, head) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | *b.get(2 + i)? as usize;
        }
        (len, 2 + n)
    };
    let end = head.checked_add(len)?;
    Some((tag, b.get(head..end)?, b.get(end..)?))
}

/// The raw issuer and subject names of a DER certificate.
fn issuer_subject(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    let (_, _serial, r) = tlv(rest)?;
    let (_, _sig, r) = tlv(r)?;
    let (_, issuer, r) = tlv(r)?;
    let (_, _validity, r) = tlv(r)?;
    let (_, subject, _) = tlv(r)?;
    Some((issuer, subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_a_full_token_and_prefix_a_bare_secret() {
        let ca = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let pem = ca.cert.pem();
        let h = ca_hash(pem.as_bytes()).unwrap();
        assert_eq!(h.len(), 64);
        assert_eq!(
            secure_token(pem.as_bytes(), "abc").unwrap(),
            format!("K10{h}::server:abc")
        );
        assert_eq!(
            secure_token(pem.as_bytes(), "K10ff::server:x").unwrap(),
            "K10ff::server:x"
        );
        assert_eq!(ca_hash(b"nothing"), Err(HashError::NoCertificate));
    }
}
