//! The k3s cluster's certificate authorities, owned by pxelab.
//!
//! Why: on a diskless lab the k3s server keeps its CA in RAM, so a reboot of the server
//! made a new cluster CA that every agent then refused. k3s uses CA files it finds in
//! `/var/lib/rancher/k3s/server/tls/` before its first start (k3s's custom-CA docs,
//! `k3s certificate` page): pxelab makes them once into `.pxelab/k3s-ca/` and delivers
//! them in the k3s server's user-data (never an agent's), so every boot of the server
//! starts with the same cluster identity, and the agents' secure token
//! ([`super::ca_hash`]) stays valid.
//!
//! The files, each a self-signed CA (ECDSA P-256, ten years), keys 0600 like every file
//! in `.pxelab/`: `server-ca`, `client-ca`, `request-header-ca`, `etcd/peer-ca`,
//! `etcd/server-ca` (`.crt` + `.key`), and `service.key` (the service-account signing
//! key). A single self-signed `server-ca.crt` makes the token's hash the SHA-256 of the
//! file's bytes.

use std::path::{Path, PathBuf};

use super::{write_once, SecretsError};

/// The folder inside `.pxelab/`.
pub const CA_DIR: &str = "k3s-ca";
/// Where k3s looks for them on the server.
pub const SERVER_TLS_DIR: &str = "/var/lib/rancher/k3s/server/tls";

/// The CAs: file stem (relative to the tls folder) and common name.
const CAS: [(&str, &str); 5] = [
    ("server-ca", "k3s-server-ca"),
    ("client-ca", "k3s-client-ca"),
    ("request-header-ca", "k3s-request-header-ca"),
    ("etcd/peer-ca", "etcd-peer-ca"),
    ("etcd/server-ca", "etcd-server-ca"),
];

/// One file for the server's tls folder.
#[derive(Clone, serde::Serialize)]
pub struct CaFile {
    /// Absolute path on the node.
    pub path: String,
    /// PEM text.
    pub content: String,
    /// Octal permissions for `write_files`.
    pub permissions: &'static str,
}

/// The cluster's CA files, as delivered.
#[derive(Clone)]
pub struct ClusterCa {
    /// Every file, certificates and keys.
    pub files: Vec<CaFile>,
    /// `server-ca.crt`: what the server serves at `/cacerts` and the token hashes.
    pub server_ca_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterCa { <redacted> }")
    }
}

fn bad(path: &Path, message: impl Into<String>) -> SecretsError {
    SecretsError::Bad {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// A new self-signed CA: (certificate PEM, key PEM).
fn make_ca(common_name: &str, path: &Path) -> Result<(String, String), SecretsError> {
    use chrono::Datelike;
    use rcgen::{
        BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let err = |e: rcgen::Error| bad(path, format!("cannot make the CA: {e}"));
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let now = chrono::Utc::now();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("{common_name}@{}", now.timestamp()),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let (y, m, d) = (now.year(), now.month() as u8, now.day().min(28) as u8);
    params.not_before = rcgen::date_time_ymd(y, m, d);
    params.not_after = rcgen::date_time_ymd(y + 10, m, d);
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Reads `<stem>.crt` and `<stem>.key` from `dir`, making both when neither exists.
/// The key is written first: a crash in between leaves a key without its certificate,
/// which is refused with the remedy rather than paired with a new certificate.
fn pair(dir: &Path, stem: &str, common_name: &str) -> Result<(String, String), SecretsError> {
    let crt = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let read = |p: &PathBuf| std::fs::read_to_string(p).ok();
    match (read(&crt), read(&key)) {
        (Some(c), Some(k)) => Ok((c, k)),
        (None, None) => {
            let (c, k) = make_ca(common_name, &crt)?;
            let k = write_once(&key, k.as_bytes())?;
            let c = write_once(&crt, c.as_bytes())?;
            Ok((
                String::from_utf8_lossy(&c).into_owned(),
                String::from_utf8_lossy(&k).into_owned(),
            ))
        }
        (Some(_), None) | (None, Some(_)) => Err(bad(
            &crt,
            format!(
                "{stem}.crt and {stem}.key must both exist; remove {} to make the cluster CA anew \
                 (every node then needs the new token)",
                dir.display()
            ),
        )),
    }
}

/// The lab's CA files from `state_dir/k3s-ca/`, made once.
pub fn load_or_create(state_dir: &Path) -> Result<ClusterCa, SecretsError> {
    let dir = state_dir.join(CA_DIR);
    let mut files = Vec::new();
    let mut server_ca_pem = String::new();
    for (stem, cn) in CAS {
        let (crt, key) = pair(&dir, stem, cn)?;
        if stem == "server-ca" {
            server_ca_pem = crt.clone();
        }
        files.push(CaFile {
            path: format!("{SERVER_TLS_DIR}/{stem}.crt"),
            content: crt,
            permissions: "0644",
        });
        files.push(CaFile {
            path: format!("{SERVER_TLS_DIR}/{stem}.key"),
            content: key,
            permissions: "0600",
        });
    }
    let service = dir.join("service.key");
    let fresh = rcgen::KeyPair::generate()
        .map_err(|e| bad(&service, format!("cannot make the key: {e}")))?
        .serialize_pem();
    let service_key = write_once(&service, fresh.as_bytes())?;
    files.push(CaFile {
        path: format!("{SERVER_TLS_DIR}/service.key"),
        content: String::from_utf8_lossy(&service_key).into_owned(),
        permissions: "0600",
    });
    super::ca_hash::ca_hash(server_ca_pem.as_bytes())
        .map_err(|e| bad(&dir.join("server-ca.crt"), e.to_string()))?;
    Ok(ClusterCa {
        files,
        server_ca_pem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_kept_private_and_refused_when_half_there() {
        let d = tempfile::tempdir().unwrap();
        let a = load_or_create(d.path()).unwrap();
        let b = load_or_create(d.path()).unwrap();
        assert_eq!(a.server_ca_pem, b.server_ca_pem);
        assert_eq!(a.files.len(), 11);
        assert!(a.server_ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        use std::os::unix::fs::PermissionsExt;
        let key = d.path().join("k3s-ca/etcd/peer-ca.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::remove_file(d.path().join("k3s-ca/client-ca.crt")).unwrap();
        let e = load_or_create(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("client-ca.crt and client-ca.key must both exist"),
            "{e}"
        );
    }
}
