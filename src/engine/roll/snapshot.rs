//! What a roll says about the k3s server's snapshot before rebooting it. The snapshot
//! itself is taken by the reboot ([`crate::watch::reboot::reboot`], outside the engine:
//! it stops k3s and copies the datastore into `.pxelab/snapshots/` over SSH), which is
//! refused when the snapshot fails, so the roll then stops at the server with that
//! reason. This step only tells the operator reading the roll that it happens.

use super::super::Engine;
use crate::mac::Mac;

/// The note a roll shows before rebooting the k3s server `name`.
pub fn server_snapshot(engine: &Engine, mac: Mac, name: &str) -> String {
    let keep = engine.lab().file.k3s.snapshots.keep;
    tracing::info!("rolling reboot: {name} ({mac}) is the k3s server; its reboot snapshots the datastore first");
    format!(
        "{name}'s reboot stops k3s and snapshots its datastore into .pxelab/snapshots/ (the newest {keep} kept) first; no snapshot, no reboot"
    )
}
