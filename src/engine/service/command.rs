//! What a face can ask of the lab, and what it gets back: the one vocabulary the console,
//! the admin API, the CLI and the boot policy (`unknown: adopt`) share, so anything one
//! face can do every face can do.

use std::net::Ipv4Addr;

use serde::Serialize;

use super::super::EngineError;
use crate::config::NodeEntry;
use crate::mac::Mac;

/// A power action on a node's management controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerAction {
    /// Power on.
    On,
    /// Power off (hard).
    Off,
    /// Power cycle.
    Cycle,
}

/// One command to the engine service.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Add a machine to lab.yaml and release it from the wait loop.
    Adopt {
        /// The machine.
        mac: Mac,
        /// Its role.
        role: String,
        /// Its hostname (default: suggested from the lab's pattern).
        hostname: Option<String>,
        /// A fixed address.
        ip: Option<Ipv4Addr>,
    },
    /// Remove a node from lab.yaml.
    Forget {
        /// The node.
        mac: Mac,
    },
    /// Change a node's role and/or hostname in lab.yaml.
    Change {
        /// The node.
        mac: Mac,
        /// New role.
        role: Option<String>,
        /// New hostname.
        hostname: Option<String>,
    },
    /// Reboot a running node (over SSH).
    Reboot {
        /// The node.
        mac: Mac,
    },
    /// A power action (a management controller); no backend yet.
    Power {
        /// The node.
        mac: Mac,
        /// What to do.
        action: PowerAction,
    },
    /// Re-read lab.yaml now instead of at the next poll.
    Reload,
}

impl Command {
    /// A short name for logs and errors (`adopt`, `reboot`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Adopt { .. } => "adopt",
            Command::Forget { .. } => "forget",
            Command::Change { .. } => "change",
            Command::Reboot { .. } => "reboot",
            Command::Power { .. } => "power",
            Command::Reload => "reload",
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The node as lab.yaml now has it (adopt, change).
    Node(NodeEntry),
    /// The node was removed from lab.yaml.
    Forgotten(Mac),
    /// The reboot command was sent to this address.
    Rebooting {
        /// The node.
        mac: Mac,
        /// Where it was sent.
        addr: String,
    },
    /// The power action was carried out.
    Powered {
        /// The node.
        mac: Mac,
        /// What was done.
        action: PowerAction,
        /// What the backend said.
        detail: String,
    },
    /// lab.yaml was read again; whether a new lab is in force.
    Reloaded {
        /// A new lab was loaded.
        changed: bool,
    },
}

impl Reply {
    /// The node entry of an adopt or change reply.
    pub fn node(self) -> Option<NodeEntry> {
        match self {
            Reply::Node(n) => Some(n),
            _ => None,
        }
    }
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The lab.yaml edit was refused or failed.
    #[error(transparent)]
    Lab(#[from] EngineError),
    /// The node could not be reached for a reboot or power action.
    #[error("{command} of {mac} failed: {reason}")]
    Node {
        /// `reboot` or `power`.
        command: &'static str,
        /// The node.
        mac: Mac,
        /// Why.
        reason: String,
    },
    /// Nothing here can do this yet.
    #[error("{what} is not supported yet")]
    NotSupported {
        /// What was asked.
        what: String,
    },
    /// No engine service is running to carry out `command`.
    #[error("cannot {command}: no engine service is running")]
    NoService {
        /// The command's name.
        command: &'static str,
    },
}
