//! What a face can ask of the lab, and what it gets back: the one vocabulary the console,
//! the admin API, the CLI and the boot policy (`unknown: adopt`) share, so anything one
//! face can do every face can do.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::super::roll::RollOptions;
use super::super::EngineError;
use crate::config::NodeEntry;
use crate::mac::Mac;

/// A power action on a node, carried out by its `power:` driver (wol, ssh, cmd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PowerAction {
    /// Power on.
    On,
    /// Power off.
    Off,
    /// Power cycle (off and on again, or a reboot where that is all there is).
    Cycle,
}

impl PowerAction {
    /// `on`, `off` or `cycle`.
    pub fn name(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Cycle => "cycle",
        }
    }
}

impl std::str::FromStr for PowerAction {
    type Err = String;
    fn from_str(s: &str) -> Result<PowerAction, String> {
        match s {
            "on" => Ok(PowerAction::On),
            "off" => Ok(PowerAction::Off),
            "cycle" => Ok(PowerAction::Cycle),
            other => Err(format!("`{other}` is not a power action (on, off, cycle)")),
        }
    }
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
    /// A power action through the node's `power:` driver.
    Power {
        /// The node.
        mac: Mac,
        /// What to do.
        action: PowerAction,
    },
    /// Re-read lab.yaml now instead of at the next poll.
    Reload,
    /// Reboot every Ready node one at a time (see [`crate::engine::roll`]).
    Roll(RollOptions),
    /// Stop the rolling reboot under way (the node being waited for is left as it is).
    RollStop,
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
            Command::Roll(_) => "roll",
            Command::RollStop => "roll-stop",
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
    /// A rolling reboot began (its progress follows as `roll` events).
    RollStarted {
        /// Hostnames in the order they are rebooted.
        order: Vec<String>,
        /// Nodes left out because they are not Ready, with their state.
        left_out: Vec<String>,
    },
    /// The rolling reboot under way was told to stop; whether one was.
    RollStopped {
        /// A roll was under way.
        was_running: bool,
    },
}

impl Reply {
    /// What came of command `name`, in a sentence (the console's flash line, the CLI).
    pub fn said(self, name: &str) -> String {
        match self {
            Reply::Node(n) if name == "adopt" => format!(
                "adopted {} as {} ({}): lab.yaml updated, it boots at its next ask",
                n.mac, n.hostname, n.role
            ),
            Reply::Node(n) => format!("{} is now {} ({}) in lab.yaml", n.mac, n.hostname, n.role),
            Reply::Forgotten(mac) => format!("forgot {mac}: removed from lab.yaml"),
            Reply::Rebooting { mac, addr } => format!("{mac} is rebooting ({addr})"),
            Reply::Powered {
                mac,
                action,
                detail,
            } => format!("{mac}: power {}: {detail}", action.name()),
            Reply::Reloaded { changed: true } => "lab.yaml reloaded".to_string(),
            Reply::Reloaded { changed: false } => "lab.yaml unchanged".to_string(),
            Reply::RollStarted { order, .. } => format!(
                "rolling reboot of {} node(s) started: {}",
                order.len(),
                order.join(", ")
            ),
            Reply::RollStopped { was_running: true } => "rolling reboot stopped".to_string(),
            Reply::RollStopped { was_running: false } => {
                "no rolling reboot was under way".to_string()
            }
        }
    }

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
    /// The command is refused as things stand (a roll already running, a server reboot
    /// not confirmed, nothing to do).
    #[error("{command} refused: {reason}")]
    Refused {
        /// The command's name.
        command: &'static str,
        /// Why.
        reason: String,
    },
    /// Nothing here can do this yet.
    #[error("{what} is not supported yet")]
    NotSupported {
        /// What was asked.
        what: String,
    },
    /// The pxelab this console is attached to could not carry out `command` (it
    /// refused, or could not be reached): its words.
    #[error("{command} on {server}: {why}")]
    Remote {
        /// The command's name.
        command: &'static str,
        /// `host:port` of the server.
        server: String,
        /// What it said, or why it could not be asked.
        why: String,
    },
    /// No engine service is running to carry out `command`.
    #[error("cannot {command}: no engine service is running")]
    NoService {
        /// The command's name.
        command: &'static str,
    },
}
