//! `wake_on_start: true`: the morning after a power cut, boards that wake on LAN stay
//! off when the power comes back (only the pxelab host, started by systemd, comes up).
//! With this, `pxelab up` powers the lab on itself once its servers listen: the k3s
//! server first (the agents join it), then the others in lab.yaml's order, each through
//! the command surface like `pxelab power on` (so each is a `power` event).
//!
//! Only nodes whose driver can power on are woken (`wol`, a `cmd` with `on`), and only
//! those pxelab has not seen booting yet. A machine that is already running ignores a
//! magic packet; a `cmd` driver's `on` should be as harmless on a running machine (a
//! smart plug that is on stays on).

use crate::config::PowerSpec;
use crate::engine::service::PowerAction;
use crate::engine::{Command, Engine, NodeState};

/// Powers on every node that can be and was not seen yet, the k3s server first; how many
/// were woken.
pub async fn wake_lab(engine: Engine) -> usize {
    let lab = engine.lab();
    let mut nodes: Vec<&crate::config::NodeEntry> = lab
        .file
        .nodes
        .iter()
        .filter(|n| match lab.power_for(n) {
            PowerSpec::Wol => true,
            PowerSpec::Cmd(c) => c.on.is_some(),
            PowerSpec::Ssh | PowerSpec::None => false,
        })
        .collect();
    nodes.sort_by_key(|n| n.role != "k3s-server");
    let commands = engine.commands();
    let mut woken = 0;
    for n in nodes {
        let seen = engine
            .node(&n.mac)
            .is_some_and(|r| r.state != NodeState::Idle);
        if seen {
            continue;
        }
        let power = Command::Power {
            mac: n.mac,
            action: PowerAction::On,
        };
        match commands.send(power).await {
            Ok(_) => woken += 1,
            Err(e) => tracing::warn!("wake_on_start: {}: {e}", n.hostname),
        }
    }
    woken
}
