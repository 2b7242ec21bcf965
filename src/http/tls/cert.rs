//! The admin API's own certificate: made once into `.pxelab/admin-tls.{crt,key}` and
//! kept, so a client's pin stays valid across restarts.
//!
//! The key is written 0600 through [`crate::config::atomic::write_private`]; the
//! certificate names `localhost`, this host's name and the addresses it is bound to, so
//! a client that checks names would accept it too (pxelab's own client pins instead).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{fingerprint, provider, TlsError};

/// The certificate file in the state directory.
pub const CERT_FILE: &str = "admin-tls.crt";
/// The key file in the state directory (0600).
pub const KEY_FILE: &str = "admin-tls.key";

/// The admin API's certificate and key.
pub struct AdminCert {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    /// Where the certificate lives.
    pub cert_path: PathBuf,
    /// Whether this call made it (the first start with a non-loopback bind).
    pub created: bool,
}

impl std::fmt::Debug for AdminCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs and panics.
        f.debug_struct("AdminCert")
            .field("fingerprint", &self.fingerprint())
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl AdminCert {
    /// Loads the certificate from `state_dir`, or makes one naming `addrs` when there is
    /// none yet.
    pub fn load_or_create(state_dir: &Path, addrs: &[IpAddr]) -> Result<AdminCert, TlsError> {
        let cert_path = state_dir.join(CERT_FILE);
        let key_path = state_dir.join(KEY_FILE);
        if cert_path.exists() || key_path.exists() {
            return Self::load(&cert_path, &key_path);
        }
        crate::config::atomic::create_private_dir(state_dir).map_err(|source| TlsError::Io {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let mut names = vec!["localhost".to_string()];
        if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            let host = host.trim();
            if !host.is_empty() && host != "localhost" {
                names.push(host.to_string());
            }
        }
        names.extend(addrs.iter().map(|a| a.to_string()));
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        // Key first: a crash between the two leaves a key without a certificate, which
        // the next start reports instead of silently pairing a new certificate.
        crate::config::atomic::write_private(
            &key_path,
            made.signing_key.serialize_pem().as_bytes(),
        )
        .map_err(|source| TlsError::Io {
            path: key_path.clone(),
            source,
        })?;
        crate::config::atomic::write_atomic(&cert_path, made.cert.pem().as_bytes()).map_err(
            |source| TlsError::Io {
                path: cert_path.clone(),
                source,
            },
        )?;
        let mut cert = Self::load(&cert_path, &key_path)?;
        cert.created = true;
        Ok(cert)
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<AdminCert, TlsError> {
        let bad = |path: &Path, why: String| TlsError::BadFile {
            path: path.to_path_buf(),
            why,
        };
        let cert = CertificateDer::from_pem_file(cert_path).map_err(|e| {
            bad(
                cert_path,
                format!("not a PEM certificate ({e}); delete it and its key to make new ones"),
            )
        })?;
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
            bad(
                key_path,
                format!(
                    "not a PEM private key ({e}); delete it and the certificate to make new ones"
                ),
            )
        })?;
        Ok(AdminCert {
            cert,
            key,
            cert_path: cert_path.to_path_buf(),
            created: false,
        })
    }

    /// The certificate's fingerprint, as clients pin it.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.cert.as_ref())
    }

    /// A TLS acceptor serving this certificate.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| TlsError::Config(e.to_string()))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_once_kept_after_and_the_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".pxelab");
        let addrs = [IpAddr::from([10, 0, 0, 1])];
        let first = AdminCert::load_or_create(&state, &addrs).unwrap();
        assert!(first.created);
        let again = AdminCert::load_or_create(&state, &addrs).unwrap();
        assert!(!again.created);
        assert_eq!(first.fingerprint(), again.fingerprint());
        assert!(first.fingerprint().starts_with("SHA256:"));
        let mode = std::fs::metadata(state.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(format!("{first:?}").contains("SHA256:"));
        assert!(!format!("{first:?}").contains("PRIVATE"));
        first.acceptor().unwrap();
    }

    #[test]
    fn a_damaged_key_is_named_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".pxelab");
        AdminCert::load_or_create(&state, &[]).unwrap();
        std::fs::write(state.join(KEY_FILE), "garbage").unwrap();
        let err = AdminCert::load_or_create(&state, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(KEY_FILE) && err.contains("not a PEM private key"),
            "{err}"
        );
    }
}
