//! Rebooting a node over SSH, on the operator's request (the console's reboot key).
//!
//! A connection of its own, checked exactly as the watcher's are (the pinned host key,
//! `tofu` or a known_hosts file, per `ssh.host_keys`) and logged in with the operator
//! key, runs the reboot command as root (through `doas -n`/`sudo -n` when the login user
//! is not root). A node that reboots usually drops the connection before it can say
//! anything: a closed channel or connection counts as done; only a failure to connect,
//! a refused login or a non-zero exit status is an error.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::conn::{self, ConnError};
use super::trust::Trust;
use crate::engine::Engine;
use crate::mac::Mac;

/// What is run on the node (as root) by [`reboot`].
pub const REBOOT_COMMAND: &str = "reboot";

/// Connect-and-login limit.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);
/// How long the command may take before the node is taken to be rebooting.
const COMMAND_LIMIT: Duration = Duration::from_secs(5);

/// Why a node could not be rebooted.
#[derive(Debug, thiserror::Error)]
pub enum RebootError {
    /// Neither a configured nor an observed address.
    #[error("{mac}: no address known (not booted this run and no fixed ip in lab.yaml)")]
    NoAddress {
        /// The node.
        mac: Mac,
    },
    /// No host key or operator key to use.
    #[error("{mac}: {what}")]
    Keys {
        /// The node.
        mac: Mac,
        /// What is missing.
        what: String,
    },
    /// The k3s server's datastore could not be snapshotted before its reboot.
    #[error("{mac}: not rebooted, its k3s datastore could not be saved first: {why}")]
    Snapshot {
        /// The node.
        mac: Mac,
        /// Why.
        why: String,
    },
    /// Connecting or logging in failed.
    #[error("{mac}: {source}")]
    Connect {
        /// The node.
        mac: Mac,
        /// Why.
        source: ConnError,
    },
    /// The command ran and failed.
    #[error("{mac} at {addr}: `{command}` exited with status {status}: {output}")]
    Command {
        /// The node.
        mac: Mac,
        /// Where.
        addr: SocketAddr,
        /// What ran.
        command: String,
        /// Its exit status.
        status: u32,
        /// The start of its output.
        output: String,
    },
}

/// Reboots `mac` with [`REBOOT_COMMAND`]; returns the address it was sent to. The k3s
/// server's datastore is snapshotted first on the same connection
/// ([`super::snapshot`], k3s stopped for it): a reboot that would lose the cluster's
/// state is refused instead.
pub async fn reboot(engine: &Engine, mac: Mac) -> Result<SocketAddr, RebootError> {
    take_down(engine, mac, REBOOT_COMMAND).await
}

/// Runs `command` (a reboot or a poweroff) as root on `mac`, the k3s server's datastore
/// snapshotted first as [`reboot`] does: a diskless server loses it either way.
pub async fn take_down(
    engine: &Engine,
    mac: Mac,
    command: &str,
) -> Result<SocketAddr, RebootError> {
    let (c, addr) = open_node(engine, mac).await?;
    if engine.lab().is_k3s_server(&mac) {
        let saved = super::snapshot::take(engine, mac, &c, super::snapshot::Why::BeforeReboot);
        if let Err(why) = saved.await {
            close(&c).await;
            return Err(RebootError::Snapshot { mac, why });
        }
    }
    run_on(&c, mac, addr, command).await
}

/// A snapshot of the k3s server `mac` taken online (k3s keeps running) on a connection
/// of its own, before power is cut by other means than SSH (a `cmd` driver): it may
/// fail (a hung server), and the power action goes on. What became of it, in words.
pub async fn snapshot_before_power_cut(engine: &Engine, mac: Mac) -> String {
    let attempt = async {
        let (c, _) = open_node(engine, mac).await.map_err(|e| e.to_string())?;
        let saved = super::snapshot::take(engine, mac, &c, super::snapshot::Why::Scheduled).await;
        close(&c).await;
        saved
    };
    match tokio::time::timeout(Duration::from_secs(60), attempt).await {
        Ok(Ok(Some(_))) => "datastore snapshotted first".to_string(),
        Ok(Ok(None)) => "no datastore to snapshot yet".to_string(),
        Ok(Err(why)) => {
            format!("no snapshot first ({why}): changes since the last one may be lost")
        }
        Err(_) => {
            "no snapshot first (not done within 60 s): changes since the last one may be lost"
                .to_string()
        }
    }
}

/// Opens a connection of its own to `mac` (its address this run, else its fixed `ip:`),
/// checked and logged in exactly as the watcher's are. Reboot, the snapshot before a
/// reboot and `pxelab kubeconfig` go through here.
pub async fn open_node(engine: &Engine, mac: Mac) -> Result<(conn::Conn, SocketAddr), RebootError> {
    let lab = engine.lab();
    let ip = engine
        .node(&mac)
        .and_then(|r| r.seen_ip.or(r.ip.map(std::net::IpAddr::V4)))
        .or_else(|| {
            lab.node_by_mac(&mac)
                .and_then(|n| n.ip.map(std::net::IpAddr::V4))
        })
        .ok_or(RebootError::NoAddress { mac })?;
    open_at(engine, mac, ip).await
}

/// [`open_node`] at a given address (one a running instance knew, for a one-shot
/// command).
pub async fn open_at(
    engine: &Engine,
    mac: Mac,
    ip: std::net::IpAddr,
) -> Result<(conn::Conn, SocketAddr), RebootError> {
    let lab = engine.lab();
    let addr = SocketAddr::new(ip, lab.file.ssh.port);
    let keys = |what: String| RebootError::Keys { mac, what };
    let trust = match lab.file.ssh.host_keys.as_str() {
        "pinned" => crate::secrets::host_public_key(&lab, mac)
            .map(|(k, _)| Trust::Pinned(k))
            .map_err(|e| keys(format!("no pinned host key: {e}")))?,
        "tofu" => Trust::Tofu(Arc::new(Mutex::new(None))),
        path => Trust::KnownHosts {
            path: lab.resolve(std::path::Path::new(path)),
            host: ip.to_string(),
            port: addr.port(),
        },
    };
    let key =
        crate::secrets::operator_key(&lab).map_err(|e| keys(format!("no operator key: {e}")))?;
    let c = conn::open(
        addr,
        trust,
        &lab.file.ssh.user,
        key,
        CONNECT_LIMIT,
        Duration::from_secs(2),
    )
    .await
    .map_err(|source| RebootError::Connect { mac, source })?;
    Ok((c, addr))
}

/// Closes a connection [`open_node`] made, politely and within a second.
pub async fn close(c: &conn::Conn) {
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        c.disconnect(russh::Disconnect::ByApplication, "pxelab done", "en"),
    )
    .await;
}

/// Runs `command` as root on `mac` as [`reboot`] does (tests run something harmless).
pub async fn run_as_root(
    engine: &Engine,
    mac: Mac,
    command: &str,
) -> Result<SocketAddr, RebootError> {
    let (c, addr) = open_node(engine, mac).await?;
    run_on(&c, mac, addr, command).await
}

/// Runs `command` as root over `c` (then closes it), as [`run_as_root`] describes.
async fn run_on(
    c: &conn::Conn,
    mac: Mac,
    addr: SocketAddr,
    command: &str,
) -> Result<SocketAddr, RebootError> {
    let ran = conn::run(c, &conn::privileged(command), COMMAND_LIMIT, 512).await;
    close(c).await;
    match ran {
        Ok((out, Some(status))) if status != 0 => Err(RebootError::Command {
            mac,
            addr,
            command: command.to_string(),
            status,
            output: String::from_utf8_lossy(&out)
                .trim()
                .chars()
                .take(200)
                .collect(),
        }),
        // Exit 0, or the connection went away under the command: rebooting. A command
        // still running at the limit is taken the same way (the node is shutting down).
        _ => Ok(addr),
    }
}
