//! Secrets pxelab keeps beside lab.yaml in `.pxelab/`: the k3s token, the operator SSH
//! key pair and per-node host keys and k3s node passwords. Files are mode 0600; nothing
//! here is ever logged or put into an event.
//!
//! Layout of `.pxelab/` (folder mode 0700):
//! - `lab-secret`: 32 random bytes (hex), made once. Each node's pinned ed25519 host key
//!   and k3s node password are derived from it and the node's MAC
//!   (`sha256(domain ‖ secret ‖ mac)`), so they are stable across runs and reboots
//!   without a file per node, and differ between labs.
//! - `operator_ed25519` (+ `.pub`): the key pxelab logs in to nodes with, made once.
//! - `k3s-token`: the cluster token's secret, made once unless lab.yaml gives `k3s.token`
//!   or `k3s.token_file`. Nodes get it in k3s's secure form ([`secure_token`]).
//! - `k3s-ca/`: the cluster's CA files ([`cluster_ca`]), made once, for the k3s server.
//! - `snapshots/`: the k3s server's datastore snapshots ([`snapshots`]).
//!
//! Each node's host key is delivered in OpenSSH format, and for roles with
//! `ssh.server: dropbear` also in dropbear's own format ([`dropbear`]): the same key,
//! so the watcher's pinned check holds whichever sshd the node runs.
//!
//! Everything is cached in memory per lab folder: the HTTP server asks for a node's
//! secrets on every user-data request.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::{HashAlg, PrivateKey, PublicKey};
use sha2::{Digest, Sha256};

use crate::config::Lab;
use crate::mac::Mac;

pub mod ca_hash;
pub mod cluster_ca;
pub mod dropbear;
pub mod mask;
pub mod snapshots;

pub use cluster_ca::{CaFile, ClusterCa};

/// File name of the lab secret inside `.pxelab/`.
pub const LAB_SECRET_FILE: &str = "lab-secret";
/// File name of the operator private key inside `.pxelab/`.
pub const OPERATOR_KEY_FILE: &str = "operator_ed25519";
/// File name of the generated k3s token inside `.pxelab/`.
pub const TOKEN_FILE: &str = "k3s-token";

/// Why secrets could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A key or secret file exists but cannot be used.
    #[error("{path}: {message}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the content).
        message: String,
    },
    /// A key could not be encoded for a node.
    #[error("host key for {mac}: {message}")]
    Encode {
        /// The node.
        mac: Mac,
        /// What went wrong.
        message: String,
    },
}

/// What one node's user-data needs.
#[derive(Clone, Default)]
pub struct NodeSecrets {
    /// The k3s cluster token, in k3s's secure form `K10<CA hash>::server:<secret>`.
    pub k3s_token: String,
    /// The cluster's CA files: the k3s server's only (else none).
    pub k3s_ca: Option<Arc<ClusterCa>>,
    /// The operator's public key (OpenSSH format).
    pub operator_public_key: Option<String>,
    /// This node's pinned host private key (OpenSSH PEM).
    pub host_private_key: Option<String>,
    /// This node's pinned host public key (OpenSSH format).
    pub host_public_key: Option<String>,
    /// The same private key as dropbear's key file, base64 (for `encoding: b64` in
    /// `write_files`: the file is binary).
    pub host_private_key_dropbear: Option<String>,
    /// This node's stable k3s node password.
    pub node_password: Option<String>,
    /// SHA256 fingerprint of the pinned host key (`SHA256:…`), not secret.
    pub host_key_fingerprint: Option<String>,
}

impl std::fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecrets { <redacted> }")
    }
}

/// Per-node material derived from the lab secret.
#[derive(Clone)]
struct NodeKeys {
    host_private: String,
    host_private_dropbear: String,
    host_public: PublicKey,
    host_public_text: String,
    fingerprint: String,
    node_password: String,
}

/// Per-lab-folder material, loaded or made once.
struct LabKeys {
    secret: [u8; 32],
    operator: Arc<PrivateKey>,
    operator_public: String,
    nodes: Mutex<HashMap<Mac, NodeKeys>>,
    /// Token files read (path → token).
    tokens: Mutex<HashMap<PathBuf, String>>,
    /// The cluster CA, once loaded.
    ca: Mutex<Option<Arc<ClusterCa>>>,
}

fn cache() -> &'static Mutex<HashMap<PathBuf, Arc<LabKeys>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<LabKeys>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError + '_ {
    move |source| SecretsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    if t.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(t.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Creates `dir` (and parents) with mode 0700 for the last component.
fn ensure_dir(dir: &Path) -> Result<(), SecretsError> {
    crate::config::atomic::create_private_dir(dir).map_err(io_err(dir))
}

/// Writes `content` to `path` with mode 0600 unless the file already exists; returns the
/// file's content either way. Written under a temporary name and hard-linked into place,
/// so a concurrent reader never sees half a file and the first writer wins.
fn write_once(path: &Path, content: &[u8]) -> Result<Vec<u8>, SecretsError> {
    if let Ok(existing) = std::fs::read(path) {
        return Ok(existing);
    }
    if let Some(dir) = path.parent() {
        ensure_dir(dir)?;
    }
    // Unique per call: two threads creating the same secret at once must not share a
    // temporary file (the loser would fail `create_new`).
    let tmp = path.with_extension(format!(
        "tmp{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_file(&tmp);
    {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp).map_err(io_err(&tmp))?;
        f.write_all(content).map_err(io_err(&tmp))?;
        f.sync_all().map_err(io_err(&tmp))?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(content.to_vec()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read(path).map_err(io_err(path))
        }
        Err(e) => Err(io_err(path)(e)),
    }
}

fn load_secret(dir: &Path) -> Result<[u8; 32], SecretsError> {
    let path = dir.join(LAB_SECRET_FILE);
    let fresh: [u8; 32] = rand::random();
    let text = write_once(&path, format!("{}\n", hex(&fresh)).as_bytes())?;
    unhex32(&String::from_utf8_lossy(&text)).ok_or_else(|| SecretsError::Bad {
        path,
        message: "expected 64 hex digits".into(),
    })
}

fn load_operator(dir: &Path, label: &str) -> Result<PrivateKey, SecretsError> {
    let path = dir.join(OPERATOR_KEY_FILE);
    let seed: [u8; 32] = rand::random();
    let fresh = PrivateKey::new(
        KeypairData::Ed25519(Ed25519Keypair::from_seed(&seed)),
        format!("pxelab-operator@{label}"),
    )
    .map_err(|e| SecretsError::Bad {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let pem = fresh
        .to_openssh(LineEnding::LF)
        .map_err(|e| SecretsError::Bad {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let text = write_once(&path, pem.as_bytes())?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| SecretsError::Bad {
        path: path.clone(),
        message: format!("not an unencrypted OpenSSH private key: {e}"),
    })?;
    if key.is_encrypted() {
        return Err(SecretsError::Bad {
            path,
            message: "the operator key is passphrase-protected; pxelab needs it unencrypted".into(),
        });
    }
    let pub_path = dir.join(format!("{OPERATOR_KEY_FILE}.pub"));
    if !pub_path.exists() {
        if let Ok(p) = key.public_key().to_openssh() {
            write_once(&pub_path, format!("{p}\n").as_bytes())?;
        }
    }
    Ok(key)
}

fn lab_keys(lab: &Lab) -> Result<Arc<LabKeys>, SecretsError> {
    let dir = lab.state_dir();
    let mut c = lock(cache());
    if let Some(k) = c.get(&dir) {
        return Ok(k.clone());
    }
    ensure_dir(&dir)?;
    let secret = load_secret(&dir)?;
    let operator = load_operator(&dir, &lab.file.name)?;
    let operator_public = operator
        .public_key()
        .to_openssh()
        .map_err(|e| SecretsError::Bad {
            path: dir.join(OPERATOR_KEY_FILE),
            message: e.to_string(),
        })?;
    let keys = Arc::new(LabKeys {
        secret,
        operator: Arc::new(operator),
        operator_public,
        nodes: Mutex::new(HashMap::new()),
        tokens: Mutex::new(HashMap::new()),
        ca: Mutex::new(None),
    });
    c.insert(dir, keys.clone());
    Ok(keys)
}

fn derive(secret: &[u8; 32], domain: &str, mac: Mac) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0u8]);
    h.update(secret);
    h.update(mac.octets());
    h.finalize().into()
}

fn node_keys(keys: &LabKeys, mac: Mac) -> Result<NodeKeys, SecretsError> {
    if let Some(n) = lock(&keys.nodes).get(&mac) {
        return Ok(n.clone());
    }
    let enc = |e: russh::keys::ssh_key::Error| SecretsError::Encode {
        mac,
        message: e.to_string(),
    };
    let seed = derive(&keys.secret, "pxelab host key v1", mac);
    let pair = Ed25519Keypair::from_seed(&seed);
    let host_private_dropbear = base64::engine::general_purpose::STANDARD
        .encode(dropbear::encode_ed25519(&seed, &pair.public.0));
    let host = PrivateKey::new(
        KeypairData::Ed25519(pair),
        format!("root@pxelab-{}", mac.compact()),
    )
    .map_err(enc)?;
    let host_private = host.to_openssh(LineEnding::LF).map_err(enc)?.to_string();
    let host_public = host.public_key().clone();
    let host_public_text = host_public.to_openssh().map_err(enc)?;
    let fingerprint = host_public.fingerprint(HashAlg::Sha256).to_string();
    let pw = derive(&keys.secret, "pxelab k3s node password v1", mac);
    let n = NodeKeys {
        host_private,
        host_private_dropbear,
        host_public,
        host_public_text,
        fingerprint,
        node_password: hex(&pw[..16]),
    };
    lock(&keys.nodes).insert(mac, n.clone());
    Ok(n)
}

/// The k3s cluster token: `k3s.token`, else the content of `k3s.token_file`, else
/// `.pxelab/k3s-token`; a missing file is generated once (mode 0600).
pub fn k3s_token(lab: &Lab) -> Result<String, SecretsError> {
    if let Some(t) = lab.file.k3s.token.as_ref().filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_string());
    }
    let keys = lab_keys(lab)?;
    let path = match &lab.file.k3s.token_file {
        Some(p) => lab.resolve(p),
        None => lab.state_dir().join(TOKEN_FILE),
    };
    if let Some(t) = lock(&keys.tokens).get(&path) {
        return Ok(t.clone());
    }
    let fresh: [u8; 24] = rand::random();
    let text = write_once(&path, format!("{}\n", hex(&fresh)).as_bytes())?;
    let token = String::from_utf8_lossy(&text).trim().to_string();
    if token.is_empty() {
        return Err(SecretsError::Bad {
            path,
            message: "the k3s token file is empty".into(),
        });
    }
    lock(&keys.tokens).insert(path, token.clone());
    Ok(token)
}

/// The cluster's CA ([`cluster_ca`]), made once; `None` when lab.yaml's token is
/// already a secure `K10…` token: then the cluster's identity is the operator's own.
pub fn cluster_ca(lab: &Lab) -> Result<Option<Arc<ClusterCa>>, SecretsError> {
    if k3s_token(lab)?.starts_with(ca_hash::TOKEN_PREFIX) {
        return Ok(None);
    }
    let keys = lab_keys(lab)?;
    let mut held = lock(&keys.ca);
    if let Some(ca) = held.as_ref() {
        return Ok(Some(ca.clone()));
    }
    let ca = Arc::new(cluster_ca::load_or_create(&lab.state_dir())?);
    *held = Some(ca.clone());
    Ok(Some(ca))
}

/// The token every node gets: `K10<hash of the cluster CA>::server:<secret>`
/// ([`ca_hash::secure_token`]), so an agent verifies the server before it sends its
/// credentials; a `K10…` token from lab.yaml as it is.
pub fn secure_token(lab: &Lab) -> Result<String, SecretsError> {
    let secret = k3s_token(lab)?;
    match cluster_ca(lab)? {
        None => Ok(secret),
        Some(ca) => ca_hash::secure_token(ca.server_ca_pem.as_bytes(), &secret).map_err(|e| {
            SecretsError::Bad {
                path: lab
                    .state_dir()
                    .join(cluster_ca::CA_DIR)
                    .join("server-ca.crt"),
                message: e.to_string(),
            }
        }),
    }
}

/// Secrets for one node.
pub fn for_node(lab: &Lab, mac: Mac) -> Result<NodeSecrets, SecretsError> {
    let keys = lab_keys(lab)?;
    let n = node_keys(&keys, mac)?;
    let server = lab.is_k3s_server(&mac);
    Ok(NodeSecrets {
        k3s_token: secure_token(lab)?,
        k3s_ca: if server { cluster_ca(lab)? } else { None },
        operator_public_key: Some(keys.operator_public.clone()),
        host_private_key: Some(n.host_private),
        host_public_key: Some(n.host_public_text),
        host_private_key_dropbear: Some(n.host_private_dropbear),
        node_password: Some(n.node_password),
        host_key_fingerprint: Some(n.fingerprint),
    })
}

/// The operator private key the watcher logs in with.
pub fn operator_key(lab: &Lab) -> Result<Arc<PrivateKey>, SecretsError> {
    Ok(lab_keys(lab)?.operator.clone())
}

/// The operator public key (OpenSSH format), as put into every node's authorized keys.
pub fn operator_public_key(lab: &Lab) -> Result<String, SecretsError> {
    Ok(lab_keys(lab)?.operator_public.clone())
}

/// A node's pinned host public key and its `SHA256:…` fingerprint.
pub fn host_public_key(lab: &Lab, mac: Mac) -> Result<(PublicKey, String), SecretsError> {
    let keys = lab_keys(lab)?;
    let n = node_keys(&keys, mac)?;
    Ok((n.host_public, n.fingerprint))
}

#[cfg(test)]
mod tests;
