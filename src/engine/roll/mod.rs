//! The rolling reboot: every Ready node of the lab rebooted one at a time, each waited
//! for until it is Ready again in a new boot before the next goes down, the k3s server
//! first or last (or not at all) after a fresh snapshot.
//!
//! Why here, in the engine: it is policy over what the engine already knows, not a new
//! way to reach machines. Each reboot goes through the one command surface
//! ([`super::Command::Reboot`], carried out by the service's node control, as the console's
//! `R` key does); "down" and "back" are read from the engine's own records (the node's
//! boot number moves on at its next firmware DHCP, its state reaches `ready` when the
//! k3s server says so). So the roll behaves the same against real boards, QEMU guests
//! and the simulator, and it stops at the first node that does not come back, naming it
//! and what was last seen of it, so that never more than one node is down.

mod snapshot;
mod wait;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::service::{CommandError, Commands};
use super::{Engine, EventKind, NodeState};
use crate::mac::Mac;

pub use snapshot::server_snapshot;

/// How long one node may take from its reboot to Ready again, unless told otherwise.
pub const NODE_TIMEOUT: Duration = Duration::from_secs(900);

/// Where the k3s server goes in a roll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerTurn {
    /// Before the agents (a server upgrade the agents should meet).
    First,
    /// After the agents (the default: the cluster's API stays up longest).
    #[default]
    Last,
    /// Not at all.
    Skip,
}

/// What a roll is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollOptions {
    /// Where the k3s server goes.
    pub server: ServerTurn,
    /// The operator confirmed rebooting the server (its API is down meanwhile).
    pub confirm_server: bool,
    /// How long each node may take to be Ready again.
    pub node_timeout: Duration,
}

impl Default for RollOptions {
    fn default() -> Self {
        RollOptions {
            server: ServerTurn::Last,
            confirm_server: false,
            node_timeout: NODE_TIMEOUT,
        }
    }
}

/// A step of a roll, as an event (`roll`): node steps carry the node's MAC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum RollStep {
    /// The roll began: the nodes in order, and those left out (not Ready) with why.
    Started {
        /// Hostnames in the order they are rebooted.
        order: Vec<String>,
        /// `hostname (state)` of each node left out.
        left_out: Vec<String>,
    },
    /// The server's snapshot before its reboot.
    Snapshot {
        /// What the snapshot hook did.
        note: String,
    },
    /// This node is being rebooted (`n` of `of`).
    Rebooting {
        /// Its place, from 1.
        n: usize,
        /// How many the roll reboots.
        of: usize,
    },
    /// This node is Ready again in a new boot.
    Back {
        /// Seconds from its reboot.
        secs: u64,
    },
    /// Every node was rebooted and is Ready again.
    Done {
        /// How many.
        nodes: usize,
        /// Seconds the roll took.
        secs: u64,
    },
    /// The roll stopped before its end.
    Stopped {
        /// Why, naming the node.
        reason: String,
    },
}

impl RollStep {
    /// One line for the event pane and the headless face.
    pub fn describe(&self) -> String {
        match self {
            RollStep::Started { order, left_out } => {
                let mut s = format!(
                    "rolling reboot of {} node(s): {}",
                    order.len(),
                    order.join(", ")
                );
                if !left_out.is_empty() {
                    s.push_str(&format!(" (left out, not Ready: {})", left_out.join(", ")));
                }
                s
            }
            RollStep::Snapshot { note } => format!("rolling reboot: server snapshot: {note}"),
            RollStep::Rebooting { n, of } => format!("rolling reboot {n}/{of}: rebooting"),
            RollStep::Back { secs } => format!("rolling reboot: Ready again after {secs} s"),
            RollStep::Done { nodes, secs } => {
                format!("rolling reboot done: {nodes} node(s) rebooted and Ready again in {secs} s")
            }
            RollStep::Stopped { reason } => format!("rolling reboot stopped: {reason}"),
        }
    }
}

/// The roll under way, if any: at most one at a time.
#[derive(Clone, Default)]
pub struct RollSlot {
    current: Arc<Mutex<Option<Arc<CancellationToken>>>>,
}

impl RollSlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<CancellationToken>>> {
        match self.current.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Stops the roll under way; whether there was one.
    pub fn stop(&self) -> bool {
        self.lock().take().map(|c| c.cancel()).is_some()
    }
}

/// A node by MAC and hostname.
type Named = (Mac, String);

/// The nodes a roll reboots, in order, those it leaves out (`hostname (state)`), and
/// the k3s server when it is among them.
pub fn plan(engine: &Engine, server: ServerTurn) -> (Vec<Named>, Vec<String>, Option<Named>) {
    let lab = engine.lab();
    let mut agents = Vec::new();
    let mut left_out = Vec::new();
    let mut srv = None;
    for n in &lab.file.nodes {
        let state = engine
            .node(&n.mac)
            .map(|r| r.state)
            .unwrap_or(NodeState::Idle);
        let is_server = n.role == "k3s-server";
        if is_server && server == ServerTurn::Skip {
            continue;
        }
        if state != NodeState::Ready {
            left_out.push(format!("{} ({})", n.hostname, state.name()));
        } else if is_server {
            srv = Some((n.mac, n.hostname.clone()));
        } else {
            agents.push((n.mac, n.hostname.clone()));
        }
    }
    let mut order = Vec::new();
    if server == ServerTurn::First {
        order.extend(srv.clone());
    }
    order.extend(agents);
    if server == ServerTurn::Last {
        order.extend(srv.clone());
    }
    (order, left_out, srv)
}

/// Starts a roll on its own task, unless one runs or there is nothing to roll; returns
/// the order and the nodes left out.
pub fn start(
    engine: &Engine,
    commands: Commands,
    slot: &RollSlot,
    opts: RollOptions,
) -> Result<(Vec<String>, Vec<String>), CommandError> {
    let refuse = |reason: String| CommandError::Refused {
        command: "roll",
        reason,
    };
    let mut current = slot.lock();
    if current.as_ref().is_some_and(|c| !c.is_cancelled()) {
        return Err(refuse(
            "a rolling reboot is already under way (stop it first)".into(),
        ));
    }
    let (order, left_out, srv) = plan(engine, opts.server);
    if let Some((_, name)) = &srv {
        if !opts.confirm_server {
            return Err(refuse(format!(
                "rebooting the k3s server `{name}` takes the cluster's API down while it boots: confirm it, or leave the server out"
            )));
        }
    }
    if order.is_empty() {
        return Err(refuse(format!(
            "no node is Ready, so none can be rolled{}",
            if left_out.is_empty() {
                String::new()
            } else {
                format!(" ({})", left_out.join(", "))
            }
        )));
    }
    let cancel = Arc::new(CancellationToken::new());
    *current = Some(cancel.clone());
    drop(current);
    let names: Vec<String> = order.iter().map(|(_, h)| h.clone()).collect();
    engine.emit(
        None,
        EventKind::Roll {
            step: RollStep::Started {
                order: names.clone(),
                left_out: left_out.clone(),
            },
        },
    );
    let (engine, slot) = (engine.clone(), slot.clone());
    let server = srv.map(|(m, _)| m);
    tokio::spawn(async move {
        let end = run(&engine, &commands, &order, server, &opts, &cancel).await;
        // Free first: whoever reads the last event may start the next roll at once.
        {
            let mut cur = slot.lock();
            if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, &cancel)) {
                *cur = None;
            }
        }
        engine.emit(None, EventKind::Roll { step: end });
    });
    Ok((names, left_out))
}

async fn run(
    engine: &Engine,
    commands: &Commands,
    order: &[Named],
    server: Option<Mac>,
    opts: &RollOptions,
    cancel: &CancellationToken,
) -> RollStep {
    let t0 = Instant::now();
    for (i, (mac, name)) in order.iter().enumerate() {
        if Some(*mac) == server {
            let note = server_snapshot(engine, *mac, name);
            engine.emit(
                Some(*mac),
                EventKind::Roll {
                    step: RollStep::Snapshot { note },
                },
            );
        }
        engine.emit(
            Some(*mac),
            EventKind::Roll {
                step: RollStep::Rebooting {
                    n: i + 1,
                    of: order.len(),
                },
            },
        );
        match wait::reboot_and_wait(engine, commands, *mac, name, opts.node_timeout, cancel).await {
            Ok(secs) => engine.emit(
                Some(*mac),
                EventKind::Roll {
                    step: RollStep::Back { secs },
                },
            ),
            Err(reason) => return RollStep::Stopped { reason },
        };
    }
    RollStep::Done {
        nodes: order.len(),
        secs: t0.elapsed().as_secs(),
    }
}
