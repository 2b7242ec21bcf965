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

/// The engine service's way to reach running nodes: reboot over SSH as [`reboot`] does
/// (power actions have no backend yet).
pub struct SshControl;

impl crate::engine::service::NodeControl for SshControl {
    fn reboot(&self, engine: Engine, mac: Mac) -> crate::engine::service::ControlFuture {
        Box::pin(async move {
            reboot(&engine, mac)
                .await
                .map(|addr| addr.to_string())
                .map_err(|e| e.to_string())
        })
    }
}

/// Reboots `mac` with [`REBOOT_COMMAND`]; returns the address it was sent to.
pub async fn reboot(engine: &Engine, mac: Mac) -> Result<SocketAddr, RebootError> {
    run_as_root(engine, mac, REBOOT_COMMAND).await
}

/// Runs `command` as root on `mac` as [`reboot`] does (tests run something harmless).
pub async fn run_as_root(
    engine: &Engine,
    mac: Mac,
    command: &str,
) -> Result<SocketAddr, RebootError> {
    let lab = engine.lab();
    let ip = engine
        .node(&mac)
        .and_then(|r| r.seen_ip.or(r.ip.map(std::net::IpAddr::V4)))
        .or_else(|| {
            lab.node_by_mac(&mac)
                .and_then(|n| n.ip.map(std::net::IpAddr::V4))
        })
        .ok_or(RebootError::NoAddress { mac })?;
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
    let ran = conn::run(&c, &conn::privileged(command), COMMAND_LIMIT, 512).await;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        c.disconnect(russh::Disconnect::ByApplication, "pxelab done", "en"),
    )
    .await;
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
