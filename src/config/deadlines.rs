//! `ssh.deadlines:`: how long a node may stay at one step of its boot before pxelab
//! says it has stalled, and why it probably has.
//!
//! The defaults are for real hardware, not the simulator: a Raspberry Pi or an old PC
//! booting Alpine diskless over 1 GbE takes 30-90 s from initrd to its NoCloud fetch
//! (kernel start, modloop download, OpenRC boot); tiny-cloud's main phase installs
//! packages from `alpine_repo` before sshd starts, a few minutes on a slow mirror;
//! k3s takes 1-3 minutes to start on a 2 GB board and an agent waits for its server.
//! Each default is about three times the slow end of that, so a stall is worth a look
//! and never fires on a healthy slow board. `0` turns a deadline off.

use serde::{Deserialize, Serialize};

/// Per-step deadlines, in seconds, counted from the moment the node reached the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deadlines {
    /// initrd fetched → NoCloud data fetched.
    pub nocloud: u64,
    /// NoCloud fetched → SSH up.
    pub ssh: u64,
    /// SSH up → tiny-cloud bootstrap complete.
    pub bootstrap: u64,
    /// bootstrap complete → k3s starting.
    pub k3s_start: u64,
    /// k3s starting → server up / agent joined.
    pub k3s_join: u64,
    /// joined → Ready.
    pub ready: u64,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            nocloud: 240,
            ssh: 600,
            bootstrap: 600,
            k3s_start: 300,
            k3s_join: 600,
            ready: 600,
        }
    }
}
