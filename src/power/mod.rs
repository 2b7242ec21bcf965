//! Power without a BMC: turning lab machines on, off and around through the driver
//! lab.yaml gives each (`power:` per node, role or lab; see [`crate::config::PowerSpec`]).
//!
//! - `wol`: on is a Wake-on-LAN magic packet out of the lab interface
//!   ([`crate::net::wol`]); off and cycle go over SSH as `ssh` does.
//! - `ssh`: `poweroff` / `reboot` as root through the watcher's way in (pinned host
//!   key, operator key: [`crate::watch::reboot::run_as_root`]). A machine that is off or
//!   hung cannot be reached this way; the error says so and what would help.
//! - `cmd`: the operator's command per action ([`cmd`]); a missing `cycle` is `off`, a
//!   pause, then `on`.
//!
//! [`wake`]: `wake_on_start`, the lab powered on by `pxelab up` itself.
//!
//! [`LabControl`] is the engine service's way to reach machines in `pxelab up`: the
//! engine imports none of this, it is handed the control at start.

pub mod cmd;
pub mod wake;

use std::time::Duration;

use crate::config::{PowerCommands, PowerSpec, CYCLE_PAUSE_S, DEFAULT_CMD_TIMEOUT_S};
use crate::engine::service::{ControlFuture, NodeControl, PowerAction};
use crate::engine::Engine;
use crate::mac::Mac;

/// Why a power action was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// The MAC is not a node of the lab.
    #[error("{0} is not in lab.yaml, so it has no power driver")]
    NotInLab(Mac),
    /// The node's driver cannot do this action.
    #[error("{hostname}: {why}")]
    Cannot {
        /// The node.
        hostname: String,
        /// Why, and what would.
        why: String,
    },
    /// The magic packet could not be sent.
    #[error("{hostname}: {source}")]
    Wol {
        /// The node.
        hostname: String,
        /// Why.
        source: crate::net::wol::WolError,
    },
    /// SSH poweroff/reboot failed.
    #[error("{hostname}: over SSH: {reason}")]
    Ssh {
        /// The node.
        hostname: String,
        /// Why (connect, login, exit status).
        reason: String,
    },
    /// The operator's command failed.
    #[error("{hostname}: power.cmd.{action} {source}")]
    Cmd {
        /// The node.
        hostname: String,
        /// Which command.
        action: &'static str,
        /// How it failed.
        source: cmd::CmdError,
    },
}

/// Carries out `action` on `mac` with its driver; what was done, in words.
pub async fn act(engine: &Engine, mac: Mac, action: PowerAction) -> Result<String, PowerError> {
    let lab = engine.lab();
    let node = lab
        .node_by_mac(&mac)
        .ok_or(PowerError::NotInLab(mac))?
        .clone();
    let hostname = node.hostname.clone();
    let cannot = |why: String| PowerError::Cannot {
        hostname: hostname.clone(),
        why,
    };
    match (lab.power_for(&node), action) {
        (PowerSpec::None, a) => Err(cannot(format!(
            "`power: none`: pxelab does not switch this machine (power {} it by hand)",
            a.name()
        ))),
        (PowerSpec::Wol, PowerAction::On) => {
            let iface = lab.file.interface.clone().ok_or_else(|| {
                cannot("`wol` needs the lab's `interface:` in lab.yaml to send the magic packet on".into())
            })?;
            let bytes = mac.0;
            let to = tokio::task::spawn_blocking({
                let iface = iface.clone();
                move || crate::net::wol::wake(&iface, bytes)
            })
            .await
            .map_err(|e| cannot(format!("the sender stopped: {e}")))?
            .map_err(|source| PowerError::Wol {
                hostname: hostname.clone(),
                source,
            })?;
            Ok(format!("magic packet for {mac} sent to {to} on {iface}"))
        }
        (PowerSpec::Ssh, PowerAction::On) => Err(cannot(
            "`power: ssh` cannot turn on a machine that is off: give it `power: wol` (a board that wakes on LAN) or a `cmd` (smart plug, PoE port)".into(),
        )),
        (PowerSpec::Wol | PowerSpec::Ssh, a) => ssh(engine, mac, &hostname, a).await,
        (PowerSpec::Cmd(c), a) => command(engine, mac, &hostname, &c, a).await,
    }
}

/// `poweroff` or `reboot` as root over SSH.
async fn ssh(
    engine: &Engine,
    mac: Mac,
    hostname: &str,
    action: PowerAction,
) -> Result<String, PowerError> {
    let what = if action == PowerAction::Off {
        "poweroff"
    } else {
        "reboot"
    };
    // Through take_down: the k3s server's datastore is snapshotted before it goes.
    match crate::watch::reboot::take_down(engine, mac, what).await {
        Ok(addr) => Ok(format!("`{what}` sent over SSH to {addr}")),
        Err(e) => Err(PowerError::Ssh {
            hostname: hostname.to_string(),
            reason: format!(
                "{e}{}",
                if action == PowerAction::Cycle {
                    " (a hung or powered-off machine cannot be reached over SSH: a `cmd` driver can cut its power)"
                } else {
                    ""
                }
            ),
        }),
    }
}

/// The operator's command for `action` (a missing `cycle`: off, a pause, on).
async fn command(
    engine: &Engine,
    mac: Mac,
    hostname: &str,
    c: &PowerCommands,
    action: PowerAction,
) -> Result<String, PowerError> {
    let lab = engine.lab();
    let limit = c
        .timeout
        .as_deref()
        .and_then(crate::config::net::parse_duration)
        .unwrap_or(Duration::from_secs(DEFAULT_CMD_TIMEOUT_S));
    let target = cmd::Target {
        mac,
        ip: engine
            .node(&mac)
            .and_then(|r| r.seen_ip.or(r.ip.map(std::net::IpAddr::V4)))
            .or_else(|| {
                lab.node_by_mac(&mac)
                    .and_then(|n| n.ip.map(std::net::IpAddr::V4))
            }),
        hostname: hostname.to_string(),
    };
    let dir = lab.dir();
    let one = |name: &'static str, template: Option<String>| {
        let (target, dir) = (target.clone(), dir.clone());
        async move {
            let Some(t) = template else {
                return Err(PowerError::Cannot {
                    hostname: target.hostname.clone(),
                    why: format!("its `power: {{cmd: …}}` has no `{name}` command"),
                });
            };
            cmd::run(&t, &target, &dir, limit)
                .await
                .map_err(|source| PowerError::Cmd {
                    hostname: target.hostname.clone(),
                    action: name,
                    source,
                })
        }
    };
    let said = |name: &str, out: String| {
        if out.is_empty() {
            format!("power.cmd.{name} done")
        } else {
            format!("power.cmd.{name} done: {out}")
        }
    };
    // Cutting the k3s server's power loses its datastore on a diskless lab: try an
    // online snapshot first; a hung server gets its power cut anyway.
    let before = if action != PowerAction::On && lab.is_k3s_server(&mac) {
        let note = crate::watch::reboot::snapshot_before_power_cut(engine, mac).await;
        format!(" ({note})")
    } else {
        String::new()
    };
    let done = match action {
        PowerAction::On => one("on", c.on.clone()).await.map(|o| said("on", o)),
        PowerAction::Off => one("off", c.off.clone()).await.map(|o| said("off", o)),
        PowerAction::Cycle if c.cycle.is_some() => one("cycle", c.cycle.clone())
            .await
            .map(|o| said("cycle", o)),
        PowerAction::Cycle => {
            one("off", c.off.clone()).await?;
            tokio::time::sleep(Duration::from_secs(CYCLE_PAUSE_S)).await;
            let o = one("on", c.on.clone()).await?;
            Ok(format!(
                "power.cmd.off, {CYCLE_PAUSE_S} s, {}",
                said("on", o).trim_start_matches("power.cmd.")
            ))
        }
    };
    done.map(|d| d + &before)
}

/// The service's way to reach running machines in `pxelab up`: reboots over SSH,
/// power through each node's driver.
pub struct LabControl;

impl NodeControl for LabControl {
    fn reboot(&self, engine: Engine, mac: Mac) -> ControlFuture {
        Box::pin(async move {
            crate::watch::reboot::reboot(&engine, mac)
                .await
                .map(|addr| addr.to_string())
                .map_err(|e| e.to_string())
        })
    }

    fn power(&self, engine: Engine, mac: Mac, action: PowerAction) -> Option<ControlFuture> {
        Some(Box::pin(async move {
            act(&engine, mac, action).await.map_err(|e| e.to_string())
        }))
    }
}
