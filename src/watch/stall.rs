//! Stage deadlines: notices a node that has not moved on within its step's deadline
//! (`ssh.deadlines`) and says what was last seen and the likely cause, before SSH is up
//! as well as after.
//!
//! The engine stays free of timers: [`run`] is a small task that reads the engine's
//! snapshot every tick and emits `node-stalled` / `stall-cleared` through it; the
//! decision ([`check`]) is a pure function of a record, the time and the deadlines.

use std::collections::HashMap;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::deadlines::Deadlines;
use crate::engine::event::Stall;
use crate::engine::{Engine, EventKind, NodeRecord, NodeState};
use crate::mac::Mac;

/// The deadline (seconds) of the step a node in `state` is working on, if it has one.
pub fn deadline_s(state: NodeState, d: &Deadlines) -> Option<u64> {
    let s = match state {
        NodeState::Initrd => d.nocloud,
        NodeState::ConfigFetched => d.ssh,
        NodeState::SshUp | NodeState::TinyCloud => d.bootstrap,
        NodeState::Bootstrapped => d.k3s_start,
        NodeState::K3sStarting => d.k3s_join,
        NodeState::Joined => d.ready,
        _ => return None,
    };
    (s > 0).then_some(s)
}

/// Whether `r` has stalled at `now_ms`, and why. `ssh_port` names the port probed.
pub fn check(r: &NodeRecord, now_ms: u64, d: &Deadlines, ssh_port: u16) -> Option<Stall> {
    let limit = deadline_s(r.state, d)?;
    let since = *r.reached_ms.get(&r.state)?;
    let waited_s = now_ms.saturating_sub(since) / 1000;
    if waited_s < limit {
        return None;
    }
    let last = r.timeline.back();
    let last_seen = last
        .map(|t| cut(&format!("{}: {}", t.kind, t.text), 120))
        .unwrap_or_else(|| "nothing".into());
    let seen = |kind: &str, text: &str| {
        r.timeline
            .iter()
            .any(|t| t.kind == kind && t.text.contains(text))
    };
    let hint = match r.state {
        NodeState::Initrd if seen("http-fetch", "Modloop") => {
            "modloop fetched but no NoCloud request: tiny-cloud is not running (is ds= the last word of the kernel command line? an apkovl without .default_boot_services?)".to_string()
        }
        NodeState::Initrd => {
            "kernel and initrd fetched, nothing since: no network in the initramfs (NIC driver missing from the initramfs, no ip=dhcp) or the kernel did not boot (console)".to_string()
        }
        NodeState::ConfigFetched => format!(
            "NoCloud fetched but SSH never answered on port {ssh_port}: sshd not started (user-data rejected, tiny-cloud main failed), wrong ssh.port, or a firewall"
        ),
        NodeState::SshUp | NodeState::TinyCloud => match r
            .timeline
            .iter()
            .rev()
            .find(|t| t.kind == "tiny-cloud")
        {
            Some(t) if t.text.ends_with("starting") => format!(
                "tiny-cloud stuck: {} (packages from a slow alpine_repo? a runcmd that never ends?)",
                t.text
            ),
            Some(t) => format!("tiny-cloud stopped after {}: bootstrap never marked complete", t.text),
            None => "logged in, but tiny-cloud logs nothing: is it enabled (ds=/tinycloud on the command line)?".to_string(),
        },
        NodeState::Bootstrapped => {
            "tiny-cloud done, k3s never started: k3s not installed (packages) or its service not started (runcmd, rc-update)".to_string()
        }
        NodeState::K3sStarting => match r.timeline.iter().rev().find(|t| t.kind == "node-waiting") {
            Some(t) => format!("k3s still {}", t.text),
            None => "k3s started, then went silent: see /var/log/k3s.log (killed? out of memory? server gone?)".to_string(),
        },
        NodeState::Joined => {
            "joined but never Ready: kubelet or the CNI (flannel) not ready; kubectl describe node".to_string()
        }
        _ => return None,
    };
    Some(Stall {
        step: r.state.name().to_string(),
        waited_s,
        last_seen,
        hint,
    })
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

/// Checks every node once a second until `cancel` fires.
pub async fn run(engine: Engine, cancel: CancellationToken) {
    run_every(engine, cancel, Duration::from_secs(1)).await
}

/// [`run`] with its tick (tests use a shorter one).
pub async fn run_every(engine: Engine, cancel: CancellationToken, tick: Duration) {
    // Which nodes were reported stalled, in which boot and state.
    let mut stalled: HashMap<Mac, (u32, NodeState)> = HashMap::new();
    let mut every = tokio::time::interval(tick);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = every.tick() => {}
        }
        let lab = engine.lab();
        let d = lab.file.ssh.deadlines;
        let now = crate::engine::now_ms();
        for n in engine.snapshot().nodes {
            if let Some(&(boot, state)) = stalled.get(&n.mac) {
                if (boot, state) != (n.boot, n.state) {
                    // Moved on, failed, or booted again: the stall is over either way.
                    stalled.remove(&n.mac);
                    engine.emit(
                        Some(n.mac),
                        EventKind::StallCleared {
                            step: state.name().into(),
                            now: n.state.name().into(),
                        },
                    );
                }
                continue;
            }
            // Cheap filter on the row; the record (with its timeline) only when due.
            let due = deadline_s(n.state, &d)
                .zip(n.state_since_ms)
                .is_some_and(|(s, since)| now.saturating_sub(since) >= s * 1000);
            if !due {
                continue;
            }
            let Some(rec) = engine.node(&n.mac) else {
                continue;
            };
            if let Some(stall) = check(&rec, now, &d, lab.file.ssh.port) {
                stalled.insert(n.mac, (rec.boot, rec.state));
                engine.emit(Some(n.mac), EventKind::NodeStalled { stall });
            }
        }
    }
}

#[cfg(test)]
#[path = "stall_tests.rs"]
mod tests;
