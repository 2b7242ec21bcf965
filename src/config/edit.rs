//! Write-back of adoption and node changes into lab.yaml, keeping the operator's
//! comments, key order and layout.

use super::atomic::write_atomic;
use super::{ConfigError, Lab, NodeEntry};
use crate::mac::Mac;

fn entry_text(e: &NodeEntry) -> String {
    let mut s = format!(
        "  - mac: {}\n    hostname: {}\n    role: {}\n",
        e.mac, e.hostname, e.role
    );
    if let Some(ip) = e.ip {
        s.push_str(&format!("    ip: {ip}\n"));
    }
    s
}

fn commit(lab: &Lab, text: String) -> Result<Lab, ConfigError> {
    let on_disk = std::fs::read_to_string(&lab.path).map_err(|source| ConfigError::Io {
        path: lab.path.clone(),
        source,
    })?;
    if on_disk != lab.source {
        return Err(ConfigError::ChangedOnDisk {
            path: lab.path.clone(),
        });
    }
    let new_lab = super::load_validated(&lab.path, &text)?;
    write_atomic(&lab.path, text.as_bytes()).map_err(|source| ConfigError::Io {
        path: lab.path.clone(),
        source,
    })?;
    Ok(new_lab)
}

/// Appends a node to `nodes:` and writes the file.
pub fn add_node(lab: &Lab, e: &NodeEntry) -> Result<Lab, ConfigError> {
    if let Some(n) = lab.node_by_mac(&e.mac) {
        return Err(ConfigError::AlreadyKnown {
            mac: e.mac,
            hostname: n.hostname.clone(),
        });
    }
    let mut text = lab.source.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.lines().any(|l| l.starts_with("nodes:")) {
        text.push_str("nodes:\n");
    }
    text.push_str(&entry_text(e));
    commit(lab, text)
}

/// Removes a node from `nodes:` and writes the file.
pub fn remove_node(lab: &Lab, mac: Mac) -> Result<Lab, ConfigError> {
    Err(ConfigError::Edit {
        path: lab.path.clone(),
        message: format!("removing {mac} is not supported yet"),
    })
}

/// Rewrites a node's role/hostname/ip in place and writes the file.
pub fn update_node(lab: &Lab, e: &NodeEntry) -> Result<Lab, ConfigError> {
    Err(ConfigError::Edit {
        path: lab.path.clone(),
        message: format!("changing {} is not supported yet", e.mac),
    })
}
