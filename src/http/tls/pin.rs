//! The client's side: trust on first use, then only the pinned certificate.
//!
//! `known_servers` holds one `host:port SHA256:…` line per admin API this user attached
//! to. The first attach pins what the server presents (and says so, with the
//! fingerprint the operator can compare with the server's log); later a different
//! certificate is refused with the file and line to delete, as `ssh` does. Names and
//! dates are not checked: the certificate is self-made and the pin is the trust.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;

use super::{fingerprint, provider, TlsError};

/// The user's file of pinned admin API certificates.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

/// What the pin said about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// The certificate is the one pinned.
    Pinned,
    /// No pin existed: this certificate is now pinned.
    FirstUse {
        /// Its fingerprint, for the operator to compare.
        fingerprint: String,
    },
}

impl KnownServers {
    /// The file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> KnownServers {
        KnownServers { path: path.into() }
    }

    /// `$PXELAB_KNOWN_SERVERS`, else `$XDG_CONFIG_HOME/pxelab/known_servers`, else
    /// `~/.config/pxelab/known_servers`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("PXELAB_KNOWN_SERVERS") {
            return PathBuf::from(p);
        }
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("pxelab").join("known_servers")
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The fingerprint pinned for `server` (`host:port`) and its line number.
    pub fn lookup(&self, server: &str) -> Result<Option<(String, usize)>, TlsError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(TlsError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        Ok(text.lines().enumerate().find_map(|(i, line)| {
            let mut words = line.split_whitespace();
            (words.next() == Some(server))
                .then(|| words.next().map(|fp| (fp.to_string(), i + 1)))
                .flatten()
        }))
    }

    /// Pins `fingerprint` for `server`.
    pub fn pin(&self, server: &str, fingerprint: &str) -> Result<(), TlsError> {
        let io = |source| TlsError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::config::atomic::create_private_dir(dir).map_err(io)?;
        }
        let mut text = std::fs::read_to_string(&self.path).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("{server} {fingerprint}\n"));
        crate::config::atomic::write_private(&self.path, text.as_bytes()).map_err(io)
    }
}

/// Accepts exactly the pinned certificate, or any on first use, and remembers what the
/// server presented either way.
#[derive(Debug)]
struct PinVerifier {
    pinned: Option<String>,
    presented: Mutex<Option<String>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity.as_ref());
        let matches = self.pinned.as_ref().is_none_or(|p| *p == fp);
        if let Ok(mut slot) = self.presented.lock() {
            *slot = Some(fp);
        }
        if matches {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "certificate is not the pinned one".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS connection to an admin API, with what the pin said about it.
pub struct PinnedStream {
    /// The stream.
    pub stream: tokio_rustls::client::TlsStream<TcpStream>,
    /// Pinned already, or pinned now.
    pub check: PinCheck,
}

/// Connects to `server` (`host:port`) over TLS, trusting only its pinned certificate,
/// or pinning the presented one when `server` has none yet.
pub async fn connect(server: &str, known: &KnownServers) -> Result<PinnedStream, TlsError> {
    let pinned = known.lookup(server)?;
    let provider = provider();
    let verifier = Arc::new(PinVerifier {
        pinned: pinned.as_ref().map(|(fp, _)| fp.clone()),
        presented: Mutex::new(None),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let host = server
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(server);
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| TlsError::Config(format!("`{host}` is not a host name: {e}")))?;
    let tcp = TcpStream::connect(server)
        .await
        .map_err(|source| TlsError::Io {
            path: PathBuf::from(server),
            source,
        })?;
    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await;
    let presented = verifier
        .presented
        .lock()
        .ok()
        .and_then(|p| p.clone())
        .unwrap_or_default();
    match (handshake, pinned) {
        (Ok(stream), Some(_)) => Ok(PinnedStream {
            stream,
            check: PinCheck::Pinned,
        }),
        (Ok(stream), None) => {
            known.pin(server, &presented)?;
            Ok(PinnedStream {
                stream,
                check: PinCheck::FirstUse {
                    fingerprint: presented,
                },
            })
        }
        (Err(_), Some((fp, line))) if !presented.is_empty() && presented != fp => {
            Err(TlsError::Changed {
                server: server.to_string(),
                presented,
                pinned: fp,
                file: known.path.clone(),
                line,
            })
        }
        (Err(source), _) => Err(TlsError::Io {
            path: PathBuf::from(server),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection TLS echo of "ok" with the certificate in `state`.
    async fn serve_once(state: &Path) -> (String, String) {
        let cert = super::super::AdminCert::load_or_create(state, &[]).unwrap();
        let acceptor = cert.acceptor().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            for _ in 0..4 {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"ok").await;
                    let _ = tls.shutdown().await;
                }
            }
        });
        (addr, cert.fingerprint())
    }

    #[tokio::test]
    async fn pinned_on_first_use_accepted_after_refused_when_changed() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::at(dir.path().join("cfg/known_servers"));
        let (addr, fp) = serve_once(&dir.path().join("a")).await;

        let first = connect(&addr, &known).await.unwrap();
        assert_eq!(
            first.check,
            PinCheck::FirstUse {
                fingerprint: fp.clone()
            }
        );
        let mut again = connect(&addr, &known).await.unwrap();
        assert_eq!(again.check, PinCheck::Pinned);
        let mut buf = Vec::new();
        again.stream.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"ok");

        // Another certificate on the same address: refused, naming both and the line.
        let other = tempfile::tempdir().unwrap();
        let (addr2, fp2) = serve_once(other.path()).await;
        let text = std::fs::read_to_string(known.path()).unwrap();
        std::fs::write(known.path(), text.replace(&addr, &addr2)).unwrap();
        let err = match connect(&addr2, &known).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("a changed certificate was accepted"),
        };
        assert!(
            err.contains(&fp) && err.contains(&fp2) && err.contains("line 1"),
            "{err}"
        );
    }
}
