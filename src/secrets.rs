//! Secrets pxelab keeps beside lab.yaml in `.pxelab/`: the k3s token, the operator SSH
//! key pair and per-node host keys and k3s node passwords. Files are mode 0600; nothing
//! here is ever logged or put into an event.

use crate::config::Lab;
use crate::mac::Mac;

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
}

/// What one node's user-data needs.
#[derive(Clone, Default)]
pub struct NodeSecrets {
    /// The k3s cluster token.
    pub k3s_token: String,
    /// The operator's public key (OpenSSH format).
    pub operator_public_key: Option<String>,
    /// This node's pinned host private key (OpenSSH PEM).
    pub host_private_key: Option<String>,
    /// This node's pinned host public key (OpenSSH format).
    pub host_public_key: Option<String>,
    /// This node's stable k3s node password.
    pub node_password: Option<String>,
}

impl std::fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeSecrets { <redacted> }")
    }
}

/// Secrets for one node.
pub fn for_node(_lab: &Lab, _mac: Mac) -> Result<NodeSecrets, SecretsError> {
    Ok(NodeSecrets::default())
}
