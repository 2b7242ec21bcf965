//! One node's turn in a roll: reboot it through the command surface, then watch the
//! engine's record until it is Ready again in a new boot, fails, or its time is up.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::super::service::{Command, Commands};
use super::super::{Engine, NodeRecord, NodeState};
use crate::mac::Mac;

/// How often the node's record is read while waiting.
const POLL: Duration = Duration::from_millis(200);

/// What the engine last knew of a node, for a stop message.
fn last_seen(r: Option<&NodeRecord>) -> String {
    let Some(r) = r else {
        return "nothing known".to_string();
    };
    let mut s = format!("state {}", r.state.name());
    if let Some(f) = r
        .failure_reason
        .as_ref()
        .map(|f| f.summary.clone())
        .or(r.failure.clone())
    {
        s.push_str(&format!(", failure: {f}"));
    } else if let Some(st) = &r.stall {
        s.push_str(&format!(", stalled {} s: {}", st.waited_s, st.hint));
    } else if let Some(e) = &r.last_event {
        s.push_str(&format!(", last event: {e}"));
    }
    s
}

/// Reboots `mac` and waits until it is Ready in a boot after this one; the seconds it
/// took, or why the roll must stop here (naming the node).
pub(super) async fn reboot_and_wait(
    engine: &Engine,
    commands: &Commands,
    mac: Mac,
    name: &str,
    limit: Duration,
    cancel: &CancellationToken,
) -> Result<u64, String> {
    let before = engine.node(&mac);
    if let Some(r) = before.as_ref().filter(|r| r.state != NodeState::Ready) {
        return Err(format!(
            "{name} is not Ready before its turn ({}): stopping so that no two nodes are down at once",
            last_seen(Some(r))
        ));
    }
    let boot = before.map(|r| r.boot).unwrap_or(0);
    commands
        .send(Command::Reboot { mac })
        .await
        .map_err(|e| format!("{name} could not be rebooted: {e}"))?;
    let t0 = Instant::now();
    loop {
        let now = engine.node(&mac);
        if let Some(r) = now.as_ref().filter(|r| r.boot > boot) {
            match r.state {
                NodeState::Ready => return Ok(t0.elapsed().as_secs()),
                NodeState::Failed => {
                    return Err(format!(
                        "{name} booted again but failed ({}); the nodes after it were not touched",
                        last_seen(Some(r))
                    ))
                }
                _ => {}
            }
        }
        if t0.elapsed() >= limit {
            let booted = now.as_ref().is_some_and(|r| r.boot > boot);
            return Err(format!(
                "{name} did not come back within {} s: {} ({}); the nodes after it were not touched",
                limit.as_secs(),
                if booted { "it booted again but is not Ready" } else { "no new boot seen since the reboot" },
                last_seen(now.as_ref())
            ));
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                return Err(format!("stopped by the operator while waiting for {name} ({})", last_seen(now.as_ref())));
            }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}
