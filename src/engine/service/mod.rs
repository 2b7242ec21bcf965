//! The engine service: the one task that owns lab.yaml while pxelab runs. It loads it
//! again when it changes on disk (one poll), writes it back for adoptions, and carries
//! out every [`Command`] a face sends through [`Commands`], answering each.
//!
//! Why a task of its own: the engine core (inventory, state machine, boot policy) runs
//! on wire servers' receive paths and must never block on a file. A DHCP request under
//! `unknown: adopt` only queues an [`Command::Adopt`]; the write happens here, and a
//! reload can never race a write-back because both run on this one task, one at a time.
//! Reaching machines (reboot) goes through a [`NodeControl`] handed in at start, on a
//! task of its own so a slow SSH connect holds no lab.yaml edit; power actions go
//! through the same control and are reported as `power` events. A rolling reboot
//! ([`super::roll`]) runs on a task of its own, one at a time, sending its reboots
//! back through this service.

pub mod command;
pub mod control;
pub mod labfile;
pub mod surface;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use command::{Command, CommandError, PowerAction, Reply};
pub use control::{ControlFuture, NoControl, NodeControl};
pub use labfile::run_here;
pub use surface::{CommandQueue, Commands, Pending};

use super::roll::RollSlot;
use super::{Engine, EventKind};

/// How often lab.yaml is checked for an operator's edit.
pub const POLL: Duration = Duration::from_millis(700);

/// Starts the service for `engine` until `cancel` fires and attaches its [`Commands`]
/// to the engine (what [`Engine::commands`] hands every face from now on).
pub fn start(
    engine: &Engine,
    cancel: CancellationToken,
    control: Arc<dyn NodeControl>,
) -> tokio::task::JoinHandle<()> {
    let (commands, queue) = Commands::channel();
    engine.attach_commands(commands);
    tokio::spawn(run(engine.clone(), queue, cancel, control))
}

/// The service loop over an existing queue (for a caller that made the channel).
pub async fn run(
    engine: Engine,
    mut queue: CommandQueue,
    cancel: CancellationToken,
    control: Arc<dyn NodeControl>,
) {
    let rolls = RollSlot::default();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                rolls.stop();
                break;
            }
            _ = tick.tick() => {
                let _ = on_lab(&engine, Command::Reload).await;
            }
            p = queue.recv() => {
                let Some(p) = p else { break };
                execute(&engine, p, &control, &rolls).await;
            }
        }
    }
}

/// Carries out one command and answers it.
async fn execute(engine: &Engine, p: Pending, control: &Arc<dyn NodeControl>, rolls: &RollSlot) {
    match p.command.clone() {
        Command::Roll(opts) => {
            let r = super::roll::start(engine, engine.commands(), rolls, opts)
                .map(|(order, left_out)| Reply::RollStarted { order, left_out });
            p.answer(r);
        }
        Command::RollStop => p.answer(Ok(Reply::RollStopped {
            was_running: rolls.stop(),
        })),
        Command::Reboot { mac } => {
            let fut = control.reboot(engine.clone(), mac);
            tokio::spawn(async move {
                let r = fut
                    .await
                    .map(|addr| Reply::Rebooting { mac, addr })
                    .map_err(|reason| CommandError::Node {
                        command: "reboot",
                        mac,
                        reason,
                    });
                p.answer(r);
            });
        }
        Command::Power { mac, action } => match control.power(engine.clone(), mac, action) {
            None => p.answer(Err(CommandError::NotSupported {
                what: format!("power {} for {mac}", action.name()),
            })),
            Some(fut) => {
                let engine = engine.clone();
                tokio::spawn(async move {
                    let r = fut.await;
                    let lab = engine.lab();
                    let driver = lab
                        .node_by_mac(&mac)
                        .map(|n| lab.power_for(n).name())
                        .unwrap_or("none");
                    let (ok, detail) = match &r {
                        Ok(d) => (true, d.clone()),
                        Err(e) => (false, e.clone()),
                    };
                    engine.emit(
                        Some(mac),
                        EventKind::Power {
                            action,
                            driver: driver.to_string(),
                            ok,
                            detail,
                        },
                    );
                    let r = r
                        .map(|detail| Reply::Powered {
                            mac,
                            action,
                            detail,
                        })
                        .map_err(|reason| CommandError::Node {
                            command: "power",
                            mac,
                            reason,
                        });
                    p.answer(r);
                });
            }
        },
        c => {
            if p.reply.is_none() {
                // Queued by the boot policy: nobody waits, so a refusal is said here.
                if let Err(e) = on_lab(engine, c.clone()).await {
                    tracing::warn!("{} of a held machine failed: {e}", c.name());
                }
                return;
            }
            let r = on_lab(engine, c).await;
            p.answer(r);
        }
    }
}

/// A lab.yaml command on a blocking thread, awaited (so still one at a time).
async fn on_lab(engine: &Engine, c: Command) -> Result<Reply, CommandError> {
    let e = engine.clone();
    let name = c.name();
    tokio::task::spawn_blocking(move || run_here(&e, c))
        .await
        .unwrap_or(Err(CommandError::NoService { command: name }))
}

#[cfg(test)]
mod tests;
