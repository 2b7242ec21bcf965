//! `pxelab kubeconfig`: the operator's kubeconfig, read from the k3s server over SSH.
//!
//! k3s writes the cluster admin's kubeconfig to `/etc/rancher/k3s/k3s.yaml` (mode 0600)
//! on the server, pointing at `https://127.0.0.1:6443`. pxelab reads it through the same
//! checked SSH connection as a reboot ([`super::reboot::open_at`]: pinned host key,
//! operator key, root through `doas -n`/`sudo -n`), points it at the server's lab
//! address and writes it 0600: it holds the cluster admin's client key, so it never goes
//! through the admin API, an event or a log.

use std::net::IpAddr;

use super::conn::{self, privileged};
use crate::engine::Engine;
use crate::mac::Mac;

/// Where k3s writes the admin kubeconfig on the server.
pub const K3S_KUBECONFIG: &str = "/etc/rancher/k3s/k3s.yaml";

/// Why no kubeconfig was had.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The server could not be reached or logged in to.
    #[error(transparent)]
    Reach(#[from] super::reboot::RebootError),
    /// Reading the file failed.
    #[error("{mac} at {ip}: cannot read {K3S_KUBECONFIG}: {why}")]
    Read {
        /// The server.
        mac: Mac,
        /// Its address.
        ip: IpAddr,
        /// Why (k3s not started yet, no permission).
        why: String,
    },
    /// The file has no `server:` to point at the lab address.
    #[error("{K3S_KUBECONFIG} on {mac} names no `server:`; is it a kubeconfig?")]
    NoServer {
        /// The server.
        mac: Mac,
    },
}

/// `text` with every cluster `server:` URL replaced by `url`; `None` when it has none.
pub fn point_at(text: &str, url: &str) -> Option<String> {
    let mut found = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if let Some(rest) = t.strip_prefix("server:") {
                if rest.trim().starts_with("https://") {
                    found = true;
                    let indent = &l[..l.len() - t.len()];
                    return format!("{indent}server: {url}");
                }
            }
            l.to_string()
        })
        .collect();
    if text.ends_with('\n') {
        out.push(String::new());
    }
    found.then(|| out.join("\n"))
}

/// The server's kubeconfig, read at `ip` and pointed at `https://ip:6443`.
pub async fn fetch(engine: &Engine, mac: Mac, ip: IpAddr) -> Result<String, KubeconfigError> {
    let (c, _) = super::reboot::open_at(engine, mac, ip).await?;
    let cmd = privileged(&format!("cat {K3S_KUBECONFIG}"));
    let ran = conn::run(&c, &cmd, std::time::Duration::from_secs(15), 1 << 20).await;
    super::reboot::close(&c).await;
    let text = match ran {
        Ok((out, Some(0))) => String::from_utf8_lossy(&out).into_owned(),
        Ok((_, status)) => {
            return Err(KubeconfigError::Read {
                mac,
                ip,
                why: format!("exit status {status:?} (has k3s started on it?)"),
            })
        }
        Err(why) => return Err(KubeconfigError::Read { mac, ip, why }),
    };
    let host = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    point_at(&text, &format!("https://{host}:6443")).ok_or(KubeconfigError::NoServer { mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_points_at_the_lab_address_and_nothing_else_changes() {
        let k = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: QUJD\n    server: https://127.0.0.1:6443\n  name: default\nusers:\n- name: default\n  user:\n    client-key-data: S0VZ\n";
        let p = point_at(k, "https://10.0.0.10:6443").unwrap();
        assert_eq!(
            p,
            k.replace("https://127.0.0.1:6443", "https://10.0.0.10:6443")
        );
        assert!(point_at("apiVersion: v1\n", "https://x:6443").is_none());
    }
}
